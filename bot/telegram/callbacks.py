"""Inline-button callback data, as aiogram `CallbackData` factories (64 bytes at most)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class RetryTurn(CallbackData, prefix="retry"):
    """Answer the last message of a conversation again (after a failure, or for another take)."""

    conversation_id: int


class ShowAlternative(CallbackData, prefix="alt"):
    """Page to another generated reply for the same message (`reply_id` is the one to show)."""

    reply_id: int


class UseAlternative(CallbackData, prefix="use"):
    """Make the shown alternative the reply the character remembers."""

    reply_id: int


class ResumeConversation(CallbackData, prefix="resume"):
    conversation_id: int


class ForgetMe(CallbackData, prefix="forget"):
    confirmed: bool


class StarterPrompt(CallbackData, prefix="starter"):
    """A suggested first message of the persona, by its position."""

    persona_id: str
    index: int


class ChoosePersona(CallbackData, prefix="persona"):
    """Talk to this persona in this chat; `key` is its id, or a digest of a long id (see persona_views)."""

    key: str


class PersonaPage(CallbackData, prefix="personas"):
    """Show another page of the /persona menu."""

    page: int


class DeleteFact(CallbackData, prefix="fact"):
    fact_id: int


class ChooseModel(CallbackData, prefix="model"):
    """Answer with this model from the operator's menu, by its position (names can be long)."""

    index: int


class ConfirmAge(CallbackData, prefix="age"):
    """The answer to the age question of an open bot."""

    adult: bool


class CancelJob(CallbackData, prefix="cancel"):
    """Stop a running job (reading a document, finding characters) of the user's."""

    job_id: int


class ToggleDocument(CallbackData, prefix="doc"):
    """Attach a document to the current conversation, or detach it."""

    document_id: int


class PickCharacter(CallbackData, prefix="char"):
    """Play a character of a novel: its place in the cached list for (document, chapter limit)."""

    document_id: int
    upto: int  # 0: the whole book
    index: int


class ExportCard(CallbackData, prefix="card"):
    """Send a persona as a character card."""

    persona_id: str
