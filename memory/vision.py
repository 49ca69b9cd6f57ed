"""Images for vision-capable models, for one turn only.

A photo is stored in the history as its text description ("[photo] caption"), so the
history stays text and byte-stable; only the request of the turn that answers it
carries the picture, as OpenAI-style image content on the newest user message (a
`data:` URL, so no address of ours needs to be reachable by the provider).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    mime_type: str = "image/jpeg"

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def with_images(payload: list[dict[str, Any]], images: Sequence[ImageInput]) -> list[dict[str, Any]]:
    """The payload with `images` added to its last user message (a copy; unchanged if none)."""
    if not images:
        return payload
    last = max((i for i, message in enumerate(payload) if message["role"] == "user"), default=None)
    if last is None:
        return payload
    messages = list(payload)
    parts: list[dict[str, Any]] = [{"type": "text", "text": messages[last]["content"]}]
    parts += [{"type": "image_url", "image_url": {"url": image.data_url()}} for image in images]
    messages[last] = {**messages[last], "content": parts}
    return messages
