"""Telegram side of the bot: formatting, streaming replies, handlers."""
