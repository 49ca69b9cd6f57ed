"""The Telegram Mini App: a page at /app (bot/web/static, plain HTML/CSS/JS shipped in
the package) and its JSON API, secured by Telegram's initData (`initdata.py`) and served
by `server.py` over the service layer (`memory.service.self_service`)."""
