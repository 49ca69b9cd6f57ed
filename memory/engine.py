"""The turn engine: transport-independent, shared by the Telegram app and the terminal chat.

One turn:
  1. the user's message is stored durably on arrival (`inbox`), then moved into the
     history when the conversation is free: it is in the database before any model call;
  2. the request is assembled under the window budget (a pure function, `assembly`), and a
     boundary move it decides is persisted;
  3. the reply streams from the model to the caller's sink;
  4. the reply is stored exactly as it will be resent (or, if the stream broke, the partial
     text marked `interrupted`, and the user message marked `failed` so it can be answered
     again); usage is recorded, cached tokens too;
  5. background work from the context providers is scheduled; it never delays the reply.

A conversation runs one turn at a time, in arrival order; different conversations run
concurrently. That holds across processes on one database too: a turn holds the
conversation's turn lease (memory/turn_leases.py) from before it takes the waiting
messages until its outcome is stored, and a turn that finds user messages still pending
(their process was killed mid-turn) answers them with its own. When many replies end at
the same moment, their ends (steps 4-5 and the caller's sending) get a slice of each turn of the event loop (`_LoopTurns`), so the loop
reads its input between them instead of after all of them. Messages that arrive while a reply streams wait, and are answered together
by the next turn (as people write several short messages in a row): the call that runs
that turn gets status "complete", the others "merged".

Context providers (documents, memory, lore…) plug in without the engine knowing them:
they contribute static blocks (cache-stable) and tail parts (per turn).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable, Protocol, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memory.assembly import AssembledRequest, Budget, ContextTooSmall, StaticBlock, TailPart, assemble, with_tail
from memory.model_client import Completion, ErrorKind, ModelClient, ModelError
from memory.routing import ModelRoute, ModelRouter
from memory.records import Conversation, HistoryRow, Message, Owner, User, utc_now
from memory.store import Store
from memory.tokens import Calibration, count_tokens
from memory.turn_leases import TurnLeases
from memory.vision import ImageInput, with_images
from personas import Persona, PersonaError

log = logging.getLogger(__name__)


class PersonaLookup(Protocol):
    """Where the engine finds personas by id (a PersonaLibrary, or the PersonaCatalog)."""

    def require(self, persona_id: str | None) -> Persona: ...

    @property
    def default(self) -> Persona: ...


class ReplySink(Protocol):
    """Where a streamed reply goes (a Telegram chat, the terminal)."""

    async def delta(self, text: str) -> None:
        """The next piece of the reply."""

    async def restart(self) -> None:
        """The model stream restarted from scratch: drop what was shown."""


@dataclass
class TurnContext:
    """What a context provider may look at while a request is built."""

    conversation: Conversation
    persona: Persona
    user: User | None
    query: str  # the text of the new user message(s)
    budget: Budget
    request: AssembledRequest | None = None  # after a turn: the request that was sent
    # After a turn: the model that answered the conversation and its cache key, and
    # `prefix(through_message_id)`, the conversation's own request (system, static part,
    # history through that message; None: through the last answered one), or None when
    # that message is outside the window. A background task that reads the conversation
    # sends it, then its instruction, so the provider's prompt cache serves the prefix.
    model: str | None = None
    cache_key: str | None = None
    prefix: "Callable[[int | None], list[dict[str, str]] | None] | None" = None


class ContextProvider:
    """Base for the parts that add context to requests; override what applies."""

    # True for a provider whose history decoration puts the current time into the newest
    # user message (memory/timeline.py): the engine then adds no time line to the tail
    tells_time = False

    def static_blocks(self, context: TurnContext) -> Sequence[StaticBlock]:
        """Cache-stable context (documents, summaries); should change rarely."""
        return ()

    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        """Per-turn context (lore, recall, passages, new facts)."""
        return ()

    def late_tail_parts(self, context: TurnContext, room: int) -> Sequence[TailPart]:
        """Per-turn context that depends on what the request already holds (recall of the
        stored turns it leaves out): called with the request assembled without it
        (`context.request`) and `room`, the o200k tokens the prompt can still take."""
        return ()

    def decorate_history(self, context: TurnContext, rows: Sequence[HistoryRow]) -> Sequence[HistoryRow]:
        """The history rows as they are sent (date lines). Must be a pure function of stored
        data, so that a row looks the same in every request and the prefix stays cached."""
        return rows

    async def before_turn(self, context: TurnContext) -> None:
        """Slow preparation for this turn's tail (a query embedding); bounded in time."""

    async def after_turn(self, context: TurnContext) -> None:
        """Background work after a reply (compaction, fact extraction)."""


@dataclass
class ModelSettings:
    model: str
    window: int
    reply_tokens: int
    tail_tokens: int
    temperature: float | None = None
    top_p: float | None = None


@dataclass
class TurnResult:
    status: str  # complete | interrupted | failed | merged
    user_messages: list[Message] = field(default_factory=list)
    reply: Message | None = None
    error: ModelError | None = None
    completion: Completion | None = None
    # (characters the model got, characters stored) when the newest message was cut to fit
    cut: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "merged")

    @property
    def model(self) -> str | None:
        """The model that answered (a fallback endpoint's, when the main one failed)."""
        return self.completion.model if self.completion else None


class _SafeSink:
    """Calls the caller's sink, but a failing transport never breaks the turn."""

    def __init__(self, sink: ReplySink | None):
        self.sink = sink

    async def delta(self, text: str) -> None:
        if self.sink is not None:
            try:
                await self.sink.delta(text)
            except Exception:  # noqa: BLE001 - showing progress is not essential
                log.exception("reply sink failed on delta")

    async def restart(self) -> None:
        if self.sink is not None:
            try:
                await self.sink.restart()
            except Exception:  # noqa: BLE001
                log.exception("reply sink failed on restart")


class _LoopTurns:
    """Lets the ends of turns through a slice of each turn of the event loop.

    When many model streams end together (60 users who wrote at once), each turn's end is
    a millisecond or two of work without a pause: store the reply, format it, send it. In
    one loop turn that is everything: the loop reads no answer and fires no timer until
    all of them are done, so the send budget learns only then that the first final
    messages have arrived, and Telegram counts them later too (a new connection is made
    in the next loop turn). So in one loop turn, turn ends go while `slice_seconds` have
    not passed since the first; later ones wait in order of arrival, and each later loop
    turn lets the next `per_turn` of them go, after its input (answers, connections) and
    timers have been served. A lone turn never waits; a waiting one is never overtaken."""

    def __init__(self, slice_seconds: float = 0.005, per_turn: int = 4) -> None:
        self.slice = slice_seconds
        self.per_turn = per_turn
        self._turn_end: float | None = None  # the window of this loop turn; None: no turn ended in it yet
        self._queue: deque[asyncio.Future] = deque()
        self._timer = False

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if not self._queue:
            if self._turn_end is None:  # the first turn end of this loop turn goes at once
                self._turn_end = now + self.slice
                self._arm(loop)
                return
            if now < self._turn_end:
                return
        future = loop.create_future()
        self._queue.append(future)
        self._arm(loop)
        await future  # let go by `_next_turn`, in order

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        # a timer, not call_soon: it runs in the next loop turn after that turn's input, so
        # the turn ends it lets go come after the answers that arrived meanwhile
        if not self._timer:
            self._timer = True
            loop.call_later(0, self._next_turn)

    def _next_turn(self) -> None:
        self._timer = False
        self._turn_end = None
        let_go = 0
        while self._queue and let_go < self.per_turn:
            future = self._queue.popleft()
            if not future.done():  # a cancelled waiter takes no place
                future.set_result(None)
                let_go += 1
        if self._queue:
            self._arm(asyncio.get_running_loop())


class _ConversationLocks:
    """One FIFO lock per busy conversation; forgotten when nobody holds or waits. Whoever
    holds it then takes the conversation's turn lease (`leases`, memory/turn_leases.py),
    so other processes on the same database wait too."""

    def __init__(self, leases: "TurnLeases | None" = None) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self.leases = leases

    async def __call__(self, conversation_id: int):
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, users + 1)
        return _Held(self, conversation_id, lock)

    def _release(self, conversation_id: int) -> None:
        lock, users = self._locks[conversation_id]
        if users <= 1:
            del self._locks[conversation_id]
        else:
            self._locks[conversation_id] = (lock, users - 1)


class _Held:
    def __init__(self, owner: _ConversationLocks, conversation_id: int, lock: asyncio.Lock):
        self.owner, self.conversation_id, self.lock = owner, conversation_id, lock
        self.lease = None

    async def __aenter__(self) -> None:
        try:
            await self.lock.acquire()
        except BaseException:
            self.owner._release(self.conversation_id)
            raise
        if self.owner.leases is None:
            return
        lease = self.owner.leases.hold(self.conversation_id)
        try:
            await lease.__aenter__()
        except BaseException:
            self.lock.release()
            self.owner._release(self.conversation_id)
            raise
        self.lease = lease

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.lease is not None:
                await self.lease.__aexit__(None, None, None)
        finally:
            self.lock.release()
            self.owner._release(self.conversation_id)


# The most recent messages a lorebook may scan: its deepest `scan_depth`, up to this many
# (matching every entry against hundreds of messages each turn would cost more than it finds).
MAX_LORE_SCAN_MESSAGES = 100

CONTINUE_INSTRUCTION = (
    "[Continue your previous reply from exactly where it stopped. Do not repeat anything "
    "already written, and do not add a preamble.]"
)
_CJK_OR_SPACE = re.compile(r"[\s\u3000-\u9fff\uff00-\uffef]")


def join_continuation(text: str, addition: str) -> str:
    """Append a continuation without doubling or losing the space between them."""
    if not text or not addition or _CJK_OR_SPACE.match(text[-1]) or _CJK_OR_SPACE.match(addition[0]):
        return text + addition
    if addition[0] in ",.;:!?)…" or text[-1] in "([":
        return text + addition
    return f"{text} {addition}"


@dataclass
class _Generation:
    """One model reply in the making: what was sent, and what came back or went wrong."""

    conversation: Conversation
    persona: Persona
    model: str
    request: AssembledRequest | None = None
    completion: Completion | None = None
    error: ModelError | None = None
    images: Sequence[ImageInput] = ()


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def utc_offset(local: datetime) -> str:
    """`UTC+08:00` for a zone-aware time."""
    offset = local.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"


def time_part(now: datetime, zone: ZoneInfo) -> TailPart:
    local = now.astimezone(zone)
    return TailPart("time", f"Current time for the user: {local:%A, %Y-%m-%d %H:%M} ({zone.key}, {utc_offset(local)})")


class Engine:
    def __init__(self, store: Store, client: ModelClient, personas: "PersonaLookup", settings: ModelSettings,
                 *, providers: Sequence[ContextProvider] = (), operator_rules: str = "",
                 default_timezone: str = "UTC", clock=utc_now, models: ModelRouter | None = None):
        self.store = store
        self.client = client
        self.personas = personas
        self.settings = settings
        self.providers = list(providers)
        self.operator_rules = operator_rules.strip()
        self.default_timezone = default_timezone
        self.clock = clock
        self.models = models  # per-user and per-persona model choice (memory/routing.py)
        self.calibration = Calibration(store.usage.calibration_ratios())
        self._locks = _ConversationLocks(store.turns)
        self._turn_ends = _LoopTurns()
        self._background: set[asyncio.Task] = set()
        self._system_tokens: dict[str, int] = {}
        self.prepare_seconds = 3.0  # the most `before_turn` work may delay a reply
        self._images: dict[int, list[ImageInput]] = {}  # for the next turn of a conversation

    # -- conversations ----------------------------------------------------------------
    def persona(self, persona_id: str | None) -> Persona:
        try:
            return self.personas.require(persona_id)
        except PersonaError:
            log.warning("persona %r is gone; using the default persona", persona_id)
            return self.personas.default

    def conversation_for(self, owner: Owner, persona_id: str | None = None, *,
                         user: User | None = None) -> Conversation:
        """The owner's active conversation with this persona, started (with its greeting) if none."""
        persona = self.persona(persona_id)
        conversation = self.store.conversations.active_conversation(owner, persona.id)
        if conversation is not None:
            return conversation
        # another process may be starting it right now: one of the two starts it
        return self.store.conversations.active_or_start(owner, persona.id, greeting=self._greeting(persona, user),
                                                        speaker_name=persona.name)

    def start_conversation(self, owner: Owner, persona_id: str | None = None, *,
                           user: User | None = None) -> Conversation:
        """A new conversation (older ones are kept); the persona's greeting is its first message."""
        persona = self.persona(persona_id)
        return self.store.conversations.start_conversation(owner, persona.id, greeting=self._greeting(persona, user),
                                                           speaker_name=persona.name)

    @staticmethod
    def _greeting(persona: Persona, user: User | None) -> str | None:
        """The persona's greeting for this user, the first message of a new conversation."""
        greeting = persona.greeting.strip()
        return persona.render(greeting, user.name if user else "User") if greeting else None

    # -- request building -------------------------------------------------------------
    def route(self, conversation: Conversation, persona: Persona) -> ModelRoute:
        """The model that answers this conversation, and its window."""
        if self.models is not None:
            return self.models.route(conversation, persona)
        return ModelRoute(persona.model.model or self.settings.model, None,
                          "persona" if persona.model.model else "default")

    def budget(self, model: str | None = None, window: int | None = None, *,
               model_window: int | None = None, persona: Persona | None = None) -> Budget:
        """`model_window`: the window of the routed model (default: the engine's);
        `window`: a smaller one after a context-length error; `persona`: its own reply
        length (`reply_tokens`) is reserved, up to half the window, not only asked for."""
        s = self.settings
        full = model_window or s.window
        window = full if window is None else min(window, full)
        ratio = self.calibration.ratio(model or s.model)
        if window == s.window:
            budget = Budget(window=s.window, reply_tokens=s.reply_tokens, tail_tokens=s.tail_tokens, ratio=ratio)
        else:
            # another model's window, or one shrunk after a context-length error: the reserves
            # keep their proportion
            budget = Budget(window=window, reply_tokens=min(s.reply_tokens, window // 4),
                            tail_tokens=int(s.tail_tokens * window / s.window), ratio=ratio)
        if persona is not None and persona.model.reply_tokens:
            budget = replace(budget, reply_tokens=min(persona.model.reply_tokens, window // 2))
        return budget

    def system_text(self, persona: Persona, user: User | None) -> tuple[str, int]:
        """Operator rules, the persona, and the user persona (/me): static, so cacheable.

        The persona's post-history instructions go here too, not after the history as
        SillyTavern does, because text after the history would break the cached prefix."""
        user_name = user.name if user else "User"
        parts = [self.operator_rules] if self.operator_rules else []
        if any(p.tells_time for p in self.providers):
            # what the history's time stamps mean; it changes only with the user's zone
            # (or its offset, twice a year where clocks change), so it stays cached
            zone = _zone(user.timezone if user else None, self.default_timezone)
            offset = utc_offset(self.clock().astimezone(zone))
            parts.append(f"A time such as [Mon 2024-03-04 18:05] in front of a message of {user_name}'s says "
                         f"when it was written, in {user_name}'s time zone ({zone.key}, {offset}); the newest "
                         f"one says the time now, to within a quarter of an hour.")
        parts.append(persona.system_text(user_name, (user.me_description or "") if user else ""))
        if persona.post_history_instructions.strip():
            parts.append(persona.render(persona.post_history_instructions.strip(), user_name))
        text = "\n\n".join(parts)
        tokens = self._system_tokens.get(text)
        if tokens is None:
            if len(self._system_tokens) > 1024:
                self._system_tokens.clear()
            tokens = self._system_tokens[text] = count_tokens(text)
        return text, tokens

    def build_request(self, conversation: Conversation, *, user: User | None, query: str,
                      final_user_text: str | None = None, window: int | None = None,
                      tail: bool = True) -> AssembledRequest:
        """The exact request for this conversation now. Does not persist anything.
        `tail=False` leaves the per-turn tail out (a background task's prefix)."""
        persona = self.persona(conversation.persona_id)
        route = self.route(conversation, persona)
        budget = self.budget(route.model, window, model_window=route.window, persona=persona)
        context = TurnContext(conversation, persona, user, query, budget)
        system_text, system_tokens = self.system_text(persona, user)
        static_blocks = [block for p in self.providers for block in p.static_blocks(context)]
        zone = _zone(user.timezone if user else None, self.default_timezone)
        history = self.store.conversations.history_since(conversation.id, conversation.boundary_message_id)
        parts: list[TailPart] = []
        if tail:
            # the time, when the history does not already show it on the newest user message
            # (a final message that is not a stored one, a check-in or "continue", has no stamp)
            if final_user_text is not None or not any(p.tells_time for p in self.providers):
                parts.append(time_part(self.clock(), zone))
            parts += [part for p in self.providers for part in p.tail_parts(context)]
            depth = min(persona.lorebook.deepest_scan, MAX_LORE_SCAN_MESSAGES) if persona.lorebook else 0
            recent = [row.content for row in history[-depth:]] if depth else []
            if final_user_text:
                recent.append(final_user_text)
            lore = persona.lore_text(recent, user.name if user else "User", count_tokens,
                                     budget.ours(budget.tail_tokens) // 3)
            if lore:
                parts.append(TailPart("lore", lore))
        for provider in self.providers:
            history = provider.decorate_history(context, history)
        request = assemble(system_text=system_text, system_tokens=system_tokens, history=history,
                           boundary_message_id=conversation.boundary_message_id, budget=budget,
                           static_blocks=static_blocks, tail_parts=parts, final_user_text=final_user_text)
        if not tail:
            return request
        # Recall sees what this request holds and the room it leaves; the history's part
        # does not depend on the tail, so only the last message is built again.
        late_context = replace(context, request=request)
        late = [part for p in self.providers for part in p.late_tail_parts(late_context, request.room)]
        if late:
            request = with_tail(request, parts + late, max(budget.ours(budget.tail_tokens),
                                                           request.tail_tokens + request.room))
        return request

    def task_prefix(self, conversation_id: int, *, user: User | None,
                    through_message_id: int | None = None) -> list[dict[str, str]] | None:
        """The conversation's own next request, byte for byte, up to and including the
        history message `through_message_id` (None: through the last answered message):
        the system message, the static part, the history. A background task that reads the
        conversation sends this, then its instruction as the final user message, and the
        provider's cache (or a local server's slot) serves the whole prefix. None when that
        message is not in the window (it was compacted or dropped)."""
        conversation = self.store.conversations.conversation(conversation_id)
        request = self.build_request(conversation, user=user, query="", final_user_text="", tail=False)
        messages: list[dict[str, str]] = []
        trailing_user_ids: list[int] = []
        found = through_message_id is None
        for message in request.messages:
            if message.section == "user":
                break  # the empty final message stood for the task's instruction
            row_id = message.source_ids[0] if message.section == "history" and message.source_ids else None
            if row_id is not None:
                if through_message_id is not None and row_id > through_message_id:
                    break
                found = found or row_id == through_message_id
                trailing_user_ids = trailing_user_ids + [row_id] if message.role == "user" else []
            messages.append({"role": message.role, "content": message.content})
        if through_message_id is None:
            # a turn in progress: its question (at the end) is not part of what was answered
            while trailing_user_ids and self._pending(trailing_user_ids[-1]):
                trailing_user_ids.pop()
                messages.pop()
        return messages if found and len(messages) > 1 else None

    def _pending(self, message_id: int | None) -> bool:
        return message_id is not None and self.store.conversations.message(message_id).status == "pending"

    # -- turns ------------------------------------------------------------------------
    async def submit(self, conversation_id: int, text: str, *, user: User | None = None,
                     speaker_name: str | None = None, platform_message_id: str | int | None = None,
                     sink: ReplySink | None = None, stop: asyncio.Event | None = None,
                     images: Sequence[ImageInput] = ()) -> TurnResult:
        """Store the user's message and answer it (with any that arrived while it waited).

        `images` go to the model with this turn only (the stored message is the text)."""
        conversation = self.store.conversations.conversation(conversation_id)
        content = f"{speaker_name}: {text}" if conversation.group_key and speaker_name else text
        if images:  # taken by whichever turn accepts this message (it may be merged)
            self._images.setdefault(conversation_id, []).extend(images)
        self.store.inbox.enqueue_input(conversation_id, content, user_id=user.id if user else None,
                                 speaker_name=speaker_name, platform_message_id=platform_message_id)
        async with await self._locks(conversation_id):
            # Holding the turn lease, nobody else is answering this conversation: a message
            # still pending was left by a turn whose process is gone, and this turn takes it over.
            left = self.store.conversations.pending_user_messages(conversation_id)
            if left:
                log.info("conversation %s: answering %d message(s) a stopped turn left", conversation_id, len(left))
            accepted = left + self.store.inbox.accept_inputs(conversation_id)
            pending_images = self._images.pop(conversation_id, [])
            if not accepted:
                return TurnResult("merged")
            return await self._run_turn(conversation_id, accepted, user=user, sink=sink, stop=stop,
                                        images=pending_images)

    async def remember(self, conversation_id: int, text: str, *, user: User | None = None,
                       speaker_name: str | None = None, platform_message_id: str | int | None = None) -> Message:
        """Keep a message as context without answering it (group chatter not addressed to
        the character). The next turn's request includes it."""
        conversation = self.store.conversations.conversation(conversation_id)
        content = f"{speaker_name}: {text}" if conversation.group_key and speaker_name else text
        async with await self._locks(conversation_id):
            return self.store.conversations.add_message(conversation_id, "user", content, status="complete",
                                          user_id=user.id if user else None, speaker_name=speaker_name,
                                          platform_message_id=platform_message_id)

    def recover(self) -> int:
        """After a crash: user messages whose turn never finished, and those still waiting in
        the inbox, are marked failed (they stay in the history and can be answered again).
        Conversations another process runs a turn of now are left to it. Returns how many."""
        return self.store.inbox.mark_pending_failed()

    async def _run_turn(self, conversation_id: int, user_messages: list[Message], *, user: User | None,
                        sink: ReplySink | None, stop: asyncio.Event | None,
                        images: Sequence[ImageInput] = ()) -> TurnResult:
        """Answer `user_messages` (already in the history) and store the outcome."""
        query = "\n".join(m.content for m in user_messages)
        outcome = await self._generate(conversation_id, query, user=user, sink=sink, stop=stop, images=images)
        if outcome.error is not None:
            return self._fail_turn(outcome, user_messages, user)
        return self._finish_turn(outcome, user_messages, user)

    async def _generate(self, conversation_id: int, query: str, *, user: User | None,
                        sink: ReplySink | None, stop: asyncio.Event | None,
                        final_user_text: str | None = None,
                        images: Sequence[ImageInput] = ()) -> "_Generation":
        """Assemble, stream and classify one model reply; stores nothing but a moved boundary.

        A context-length error shrinks the window and retries once; a persisted boundary
        move is what makes the shrink stick for the turns after it."""
        conversation = self.store.conversations.conversation(conversation_id)
        persona = self.persona(conversation.persona_id)
        model = self.route(conversation, persona).model
        safe_sink = _SafeSink(sink)
        outcome = _Generation(conversation, persona, model, images=images)
        window = None
        await self._before_turn(conversation, persona, user, query)
        conversation = self.store.conversations.conversation(conversation_id)  # background work may have moved on
        for attempt in (1, 2):
            try:
                outcome.request = self.build_request(conversation, user=user, query=query,
                                                     final_user_text=final_user_text, window=window)
            except ContextTooSmall as exc:
                outcome.error = ModelError(ErrorKind.CONTEXT_TOO_LONG, str(exc))
                return outcome
            request = outcome.request
            if request.boundary_moved:
                self.store.conversations.set_boundary(conversation_id, request.boundary_message_id)
                conversation = outcome.conversation = self.store.conversations.conversation(conversation_id)
            try:
                completion = await self.client.stream_chat(
                    model=model, messages=with_images(request.payload(), images),
                    max_tokens=request.budget.reply_tokens,
                    temperature=persona.model.temperature if persona.model.temperature is not None
                    else self.settings.temperature,
                    top_p=persona.model.top_p if persona.model.top_p is not None else self.settings.top_p,
                    cache_key=f"conversation-{conversation_id}",
                    on_delta=safe_sink.delta, on_restart=safe_sink.restart, stop=stop,
                )
            except ModelError as error:
                if error.kind is ErrorKind.CONTEXT_TOO_LONG and attempt == 1:
                    window = self._shrunk_window(request.budget.window, error)
                    log.warning("context too long for %s; retrying once with a %d-token window", model, window)
                    continue
                outcome.error = error
                return outcome
            if not completion.text.strip() and completion.finish_reason != "stopped":
                outcome.error = ModelError(ErrorKind.STREAM, "the model returned an empty reply")
                return outcome
            outcome.completion = completion
            await self._turn_ends()
            return outcome
        raise AssertionError("unreachable")

    @staticmethod
    def _shrunk_window(window: int, error: ModelError) -> int:
        match = re.search(r"maximum context length is (\d+)", error.detail)
        if match and int(match.group(1)) < window:
            return int(match.group(1))
        return int(window * 0.75)

    def _record(self, outcome: "_Generation", user: User | None, status: str, message_id: int | None) -> None:
        """One usage row. A server that reports no usage (llama-cpp-python streams none)
        gets our own count, marked `usage_estimated`, so daily limits and /usage still
        work; the calibration learns only from reported counts, never from estimates."""
        completion = outcome.completion
        usage = completion.usage if completion else None
        request = outcome.request
        estimated = usage is not None and (not usage.reported or not usage.prompt_tokens)
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        if estimated and request is not None:
            ratio = self.calibration.ratio(completion.model)
            prompt_tokens = round(request.total_tokens * ratio)
            completion_tokens = usage.completion_tokens or round(count_tokens(completion.text) * ratio)
        self.store.usage.record_usage(
            conversation_id=outcome.conversation.id, user_id=user.id if user else None,
            model=completion.model if completion else outcome.model, outcome=status,
            prompt_tokens=prompt_tokens, cached_tokens=usage.cached_tokens if usage else 0,
            completion_tokens=completion_tokens,
            estimated_prompt_tokens=request.total_tokens if request else 0,
            first_token_ms=completion.first_token_ms if completion else None,
            latency_ms=completion.latency_ms if completion else 0, message_id=message_id,
            usage_estimated=estimated,
        )
        if usage and not estimated and request and not outcome.images:  # images are not in our count
            ratio = self.calibration.observe(completion.model, request.total_tokens, usage.prompt_tokens)
            self.store.usage.save_calibration(completion.model, ratio)

    def _finish_turn(self, outcome: "_Generation", user_messages: list[Message], user: User | None) -> TurnResult:
        completion = outcome.completion
        status = "interrupted" if completion.finish_reason == "stopped" else "complete"
        with self.store.transaction():
            reply = None
            if completion.text.strip():
                reply = self.store.conversations.add_message(
                    outcome.conversation.id, "assistant", completion.text, status=status,
                    speaker_name=outcome.persona.name, reply_to=user_messages[-1].id if user_messages else None,
                )
            self.store.conversations.set_statuses([m.id for m in user_messages], "complete")
            self._record(outcome, user, status, reply.id if reply else None)
        self._after_turn(outcome, user)
        return TurnResult(status, user_messages, reply, None, completion, outcome.request.cut)

    def _fail_turn(self, outcome: "_Generation", user_messages: list[Message], user: User | None) -> TurnResult:
        error = outcome.error
        reply = None
        with self.store.transaction():
            if error.partial.strip():
                reply = self.store.conversations.add_message(
                    outcome.conversation.id, "assistant", error.partial, status="interrupted",
                    speaker_name=outcome.persona.name, reply_to=user_messages[-1].id if user_messages else None,
                )
            self.store.conversations.set_statuses([m.id for m in user_messages], "failed")
            self._record(outcome, user, "failed", reply.id if reply else None)
        log.warning("turn failed in conversation %s: %s", outcome.conversation.id, error)
        return TurnResult("interrupted" if reply else "failed", user_messages, reply, error,
                          cut=outcome.request.cut if outcome.request else None)

    # -- operations on the last exchange -------------------------------------------------
    async def regenerate(self, conversation_id: int, *, user: User | None = None, sink: ReplySink | None = None,
                         stop: asyncio.Event | None = None) -> TurnResult:
        """Answer the last user message(s) again. Every alternative is kept: the new reply is
        the one in the context, the earlier ones are hidden (see `choose_alternative`). A
        failed regeneration leaves the previous reply in place."""
        async with await self._locks(conversation_id):
            user_messages, reply = self.store.conversations.last_exchange(conversation_id)
            if not user_messages:
                return TurnResult("failed", error=ModelError(ErrorKind.BAD_REQUEST, "nothing to answer again"))
            if reply is not None:
                self.store.conversations.set_status(reply.id, "hidden")
            result = await self._run_turn(conversation_id, user_messages, user=user, sink=sink, stop=stop)
            if not result.ok and reply is not None:
                with self.store.transaction():
                    self.store.conversations.set_statuses([m.id for m in user_messages], "complete")
                    if result.reply is not None:
                        self.store.conversations.set_status(result.reply.id, "hidden")
                    self.store.conversations.set_status(reply.id, reply.status)
            return result

    async def continue_reply(self, conversation_id: int, *, user: User | None = None,
                             sink: ReplySink | None = None, stop: asyncio.Event | None = None) -> TurnResult:
        """Extend the last reply: the continuation is appended to it (it stays one message)."""
        async with await self._locks(conversation_id):
            _, reply = self.store.conversations.last_exchange(conversation_id)
            if reply is None:
                return TurnResult("failed", error=ModelError(ErrorKind.BAD_REQUEST, "no reply to continue"))
            outcome = await self._generate(conversation_id, reply.content[-500:], user=user, sink=sink,
                                           stop=stop, final_user_text=CONTINUE_INSTRUCTION)
            if outcome.error is not None:
                with self.store.transaction():
                    self._record(outcome, user, "failed", None)
                return TurnResult("failed", [], None, outcome.error)
            addition = outcome.completion.text
            with self.store.transaction():
                extended = self.store.conversations.replace_content(
                    reply.id, join_continuation(reply.content, addition))
                self._record(outcome, user, "complete", reply.id)
            self._after_turn(outcome, user)
            return TurnResult("complete", [], extended, None, outcome.completion)

    async def reach_out(self, conversation_id: int, instruction: str, *, user: User | None = None,
                        sink: ReplySink | None = None) -> TurnResult:
        """Write first (a check-in): the model answers an unstored `instruction` that follows
        the whole conversation, and its text is stored as an assistant message of its own."""
        async with await self._locks(conversation_id):
            recent = self.store.conversations.messages(conversation_id, limit=2)
            query = "\n".join(m.content for m in recent)
            outcome = await self._generate(conversation_id, query, user=user, sink=sink, stop=None,
                                           final_user_text=instruction)
            if outcome.error is not None:
                with self.store.transaction():
                    self._record(outcome, user, "failed", None)
                return TurnResult("failed", [], None, outcome.error)
            with self.store.transaction():
                message = self.store.conversations.add_message(conversation_id, "assistant", outcome.completion.text,
                                                 speaker_name=outcome.persona.name)
                self._record(outcome, user, "complete", message.id)
            self._after_turn(outcome, user)
            return TurnResult("complete", [], message, None, outcome.completion)

    async def undo(self, conversation_id: int) -> list[Message]:
        """Take the last exchange out of the context. It stays in the database, hidden."""
        async with await self._locks(conversation_id):
            user_messages, reply = self.store.conversations.last_exchange(conversation_id)
            hidden = user_messages + ([reply] if reply else [])
            self.store.conversations.set_statuses([m.id for m in hidden], "hidden")
            return hidden

    async def answer_edit(self, conversation_id: int, platform_message_id: str | int, new_text: str, *,
                          user: User | None = None, speaker_name: str | None = None,
                          sink: ReplySink | None = None, stop: asyncio.Event | None = None) -> TurnResult | None:
        """The user edited a message. If it belongs to the last exchange, that exchange is
        hidden (kept) and the new text answered; an older message returns None."""
        async with await self._locks(conversation_id):
            edited = self.store.conversations.find_by_platform_id(conversation_id, platform_message_id, role="user")
            user_messages, reply = self.store.conversations.last_exchange(conversation_id)
            if edited is None or edited.id not in {m.id for m in user_messages}:
                return None
            self.store.conversations.set_statuses(
                [m.id for m in user_messages] + ([reply.id] if reply else []), "hidden")
        return await self.submit(conversation_id, new_text, user=user, speaker_name=speaker_name,
                                 platform_message_id=platform_message_id, sink=sink, stop=stop)

    def alternatives(self, reply_id: int) -> list[Message]:
        """All replies generated for the same user message as `reply_id`, oldest first."""
        reply = self.store.conversations.message(reply_id)
        return self.store.conversations.alternatives(reply.reply_to) if reply.reply_to else [reply]

    async def choose_alternative(self, reply_id: int) -> Message:
        """Make one alternative the reply in the context; only for the latest exchange, so the
        history before it (and the provider's cache) stays as it was."""
        chosen = self.store.conversations.message(reply_id)
        async with await self._locks(chosen.conversation_id):
            user_messages, current = self.store.conversations.last_exchange(chosen.conversation_id)
            if chosen.role != "assistant" or not user_messages or chosen.reply_to != user_messages[-1].id:
                raise ValueError("only a reply to the latest message can be chosen")
            with self.store.transaction():
                for alternative in self.store.conversations.alternatives(chosen.reply_to):
                    if alternative.id != chosen.id and alternative.status != "hidden":
                        self.store.conversations.set_status(alternative.id, "hidden")
                self.store.conversations.set_status(chosen.id, "complete")
            return self.store.conversations.message(chosen.id)

    # -- background work --------------------------------------------------------------
    async def _before_turn(self, conversation: Conversation, persona: Persona, user: User | None,
                           query: str) -> None:
        context = TurnContext(conversation, persona, user, query,
                              self.budget(persona.model.model, persona=persona))
        work = [self._guarded(p.before_turn(context)) for p in self.providers
                if type(p).before_turn is not ContextProvider.before_turn]
        if work:
            # preparation only improves the tail; a slow helper must not hold the reply back
            _, late = await asyncio.wait([asyncio.ensure_future(w) for w in work], timeout=self.prepare_seconds)
            for task in late:
                task.cancel()

    def _after_turn(self, outcome: "_Generation", user: User | None) -> None:
        conversation_id = outcome.conversation.id
        context = TurnContext(
            outcome.conversation, outcome.persona, user, "", outcome.request.budget, outcome.request,
            model=outcome.model, cache_key=f"conversation-{conversation_id}",
            prefix=lambda through=None: self.task_prefix(conversation_id, user=user, through_message_id=through))
        for provider in self.providers:
            task = asyncio.get_running_loop().create_task(self._guarded(provider.after_turn(context)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    @staticmethod
    async def _guarded(work) -> None:
        try:
            await work
        except Exception:  # noqa: BLE001 - background work retries later; never breaks a turn
            log.exception("background work failed")

    async def drain(self) -> None:
        """Wait for background work (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.client.close()
