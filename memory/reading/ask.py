"""One request to the model for the documents feature's own jobs (summaries, character
lists, character sheets): the instructions in the system message, the document's text
in the user message between markers, never the other way round, so text in a book
cannot pose as instructions. Not streamed to anyone; a failure is a `ModelError`.
Background work (`task="reading"`): it waits behind turns at the endpoint's gate. It reads
a document, not a conversation, so it has no conversation prefix to share."""

from __future__ import annotations

from memory.model_client import ModelClient


async def ask(client: ModelClient, *, model: str, instructions: str, prompt: str, max_tokens: int,
              temperature: float = 0.2) -> str:
    completion = await client.stream_chat(
        model=model, messages=[{"role": "system", "content": instructions}, {"role": "user", "content": prompt}],
        max_tokens=max_tokens, temperature=temperature, task="reading")
    return completion.text
