"""The safety hook: an optional moderation step on what users write and on what the
character answers, with a policy the operator sets for each direction.

Checkers:
- `ModerationEndpoint`: an OpenAI-compatible `/v1/moderations` endpoint (OpenAI's own, or
  any server that speaks it), through the openai SDK.
- `WordList`: words and phrases the operator lists. Latin words match whole words,
  case-insensitively (so "ass" does not flag "class"); Chinese and other scripts without
  spaces match as substrings. Text is NFKC-normalised first, so full-width letters match.

Policies (`Policy`), per direction:
- refuse: a flagged message is not answered (input: it is not stored either; output: the
  reply is kept in the database but hidden from the context, and the user sees a refusal);
- warn: the turn goes on, and the user sees a warning;
- log: the turn goes on silently;
- off: that direction is not checked.
Every flagged message is recorded in `moderation_events` (what, which checker, which
categories, the first characters; the rows are `ModerationEvents`') and logged, whatever
the policy.

A checker that fails (the endpoint is down) lets the message through and logs a warning:
the hook is a filter for a companion bot, and failing closed would make the whole bot
depend on a second service.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import openai

from memory.store import Store

log = logging.getLogger(__name__)
EXCERPT_CHARS = 200


class Policy(enum.StrEnum):
    REFUSE = "refuse"
    WARN = "warn"
    LOG = "log"
    OFF = "off"


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    checker: str = ""
    categories: tuple[str, ...] = ()


CLEAN = Verdict(False)


class ModerationUnavailable(Exception):
    """The checker could not give a verdict (endpoint down, bad answer)."""


class Checker(Protocol):
    name: str

    async def check(self, text: str) -> Verdict: ...

    async def close(self) -> None: ...


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class WordList:
    name = "words"

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted({_normal(w).strip() for w in words if w.strip()}, key=lambda w: (-len(w), w))
        patterns = [rf"(?<!\w){re.escape(w)}(?!\w)" if re.fullmatch(r"[\w\s'-]+", w, re.ASCII) else re.escape(w)
                    for w in self.words]
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    @classmethod
    def from_file(cls, path, extra: Iterable[str] = ()) -> "WordList":
        """One word or phrase per line; blank lines and lines starting with # are skipped."""
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
        return cls([*lines, *extra])

    async def check(self, text: str) -> Verdict:
        if self._pattern is None:
            return CLEAN
        found = sorted({match.group(0) for match in self._pattern.finditer(_normal(text))})
        return Verdict(True, self.name, tuple(f"word: {w}" for w in found)) if found else CLEAN

    async def close(self) -> None:
        return None


class ModerationEndpoint:
    name = "endpoint"

    def __init__(self, *, base_url: str | None, api_key: str | None, model: str | None = None,
                 timeout_seconds: float = 15.0) -> None:
        self.model = model
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                          max_retries=1, timeout=timeout_seconds)

    async def check(self, text: str) -> Verdict:
        try:
            kwargs = {"model": self.model} if self.model else {}
            response = await self._client.moderations.create(input=text, **kwargs)
        except openai.OpenAIError as exc:
            raise ModerationUnavailable(f"{type(exc).__name__}: {exc}") from exc
        flagged, categories = False, set()
        for result in response.results or []:
            if result.flagged:
                flagged = True
                raw = result.categories.model_dump(by_alias=True) if result.categories is not None else {}
                categories |= {name for name, hit in raw.items() if hit is True}
        return Verdict(True, self.name, tuple(sorted(categories))) if flagged else CLEAN

    async def close(self) -> None:
        await self._client.close()


@dataclass(frozen=True)
class Screening:
    """The outcome for one message: the verdict, and what the policy does with it."""

    verdict: Verdict
    action: Policy | None = None  # None: not flagged (or not checked)

    @property
    def refused(self) -> bool:
        return self.action is Policy.REFUSE

    @property
    def warned(self) -> bool:
        return self.action is Policy.WARN


PASSED = Screening(CLEAN)


@dataclass(frozen=True)
class ModerationEvent:
    id: int
    user_id: int | None
    conversation_id: int | None
    message_id: int | None
    direction: str
    action: str
    checker: str
    categories: list[str]
    excerpt: str
    created_at: str


class ModerationEvents:
    """The `moderation_events` rows: what was flagged, for the operator's review."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, direction: str, action: str, checker: str, categories: list[str], excerpt: str,
               user_id: int | None, conversation_id: int | None, message_id: int | None) -> None:
        with self.store.db.atomic():
            self.store.db.execute(
                "INSERT INTO moderation_events (user_id, conversation_id, message_id, direction, action, checker, "
                "categories, excerpt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [user_id, conversation_id, message_id, direction, action, checker,
                 json.dumps(categories, ensure_ascii=False), excerpt, self.store.now()])

    def latest(self, user_id: int | None = None, limit: int = 100) -> list[ModerationEvent]:
        """The newest events first, of one user or of everyone."""
        where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
        rows = self.store.db.execute(
            "SELECT id, user_id, conversation_id, message_id, direction, action, checker, categories, excerpt, "
            f"created_at FROM moderation_events {where} ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        return [ModerationEvent(*row[:7], json.loads(row[7]), *row[8:]) for row in rows]


class SafetyGate:
    def __init__(self, store: Store, checkers: Sequence[Checker], *, input_policy: Policy = Policy.REFUSE,
                 output_policy: Policy = Policy.REFUSE) -> None:
        self.store = store
        self.events_store = ModerationEvents(store)
        self.checkers = list(checkers)
        self.policies = {"input": input_policy if checkers else Policy.OFF,
                         "output": output_policy if checkers else Policy.OFF}

    @property
    def holds_replies_back(self) -> bool:
        """A reply that may be refused must not be shown while it is written."""
        return self.policies["output"] is Policy.REFUSE

    async def screen_input(self, text: str, *, user_id: int | None, conversation_id: int | None) -> Screening:
        """Check what a user wrote, before it is stored or answered."""
        return await self._screen("input", text, user_id=user_id, conversation_id=conversation_id)

    async def screen_output(self, text: str, *, user_id: int | None, conversation_id: int | None,
                            message_id: int | None) -> Screening:
        """Check a stored reply; a refused one is hidden from the context (and kept)."""
        screening = await self._screen("output", text, user_id=user_id, conversation_id=conversation_id,
                                       message_id=message_id)
        if screening.refused and message_id is not None:
            self.store.conversations.set_status(message_id, "hidden")
        return screening

    async def _screen(self, direction: str, text: str, *, user_id: int | None, conversation_id: int | None,
                      message_id: int | None = None) -> Screening:
        policy = self.policies[direction]
        if policy is Policy.OFF or not text.strip():
            return PASSED
        verdict = await self.verdict(text)
        if not verdict.flagged:
            return PASSED
        self._record(direction, policy, verdict, text, user_id, conversation_id, message_id)
        return Screening(verdict, policy)

    async def verdict(self, text: str) -> Verdict:
        """The first checker that flags the text decides."""
        for checker in self.checkers:
            try:
                verdict = await checker.check(text)
            except ModerationUnavailable as exc:
                log.warning("moderation by %s unavailable (%s); letting the message through", checker.name, exc)
                continue
            if verdict.flagged:
                return verdict
        return CLEAN

    def _record(self, direction: str, policy: Policy, verdict: Verdict, text: str, user_id: int | None,
                conversation_id: int | None, message_id: int | None) -> None:
        self.events_store.record(direction, str(policy), verdict.checker, list(verdict.categories),
                                 text[:EXCERPT_CHARS], user_id, conversation_id, message_id)
        log.warning("moderation flagged %s (%s): %s", direction, policy, ", ".join(verdict.categories),
                    extra={"moderation": {"direction": direction, "action": str(policy), "checker": verdict.checker,
                                          "categories": list(verdict.categories), "user_id": user_id,
                                          "conversation_id": conversation_id}})

    def events(self, user_id: int | None = None, limit: int = 100) -> list[ModerationEvent]:
        return self.events_store.latest(user_id, limit)

    async def close(self) -> None:
        for checker in self.checkers:
            await checker.close()
