"""The one error type of the personas package, and how pydantic errors become its messages.

Every problem with a persona file or a character card ends up as a `PersonaError` whose
message says where (file, field) and what to fix, in one short line that a CLI or a bot
can show as is. Pydantic's `ValidationError` is translated here so that all loaders word
their errors the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError


class PersonaError(ValueError):
    """A persona file or card that cannot be used; the message says where and why."""


def describe_validation_error(
    exc: ValidationError, *, known_fields: Iterable[str] = (), rename: dict[str, str] | None = None
) -> str:
    """One line naming each bad field and its problem.

    `rename` maps the first part of a field path to the name the reader knows (a card
    says `data.character_book`, the model says `lorebook`).
    """
    known = list(known_fields)
    problems = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        if rename and parts and parts[0] in rename:
            parts[0] = rename[parts[0]]
        field = ".".join(parts)
        message = error["msg"].removeprefix("Value error, ")
        if not field:
            problems.append(message)
        elif error["type"] == "extra_forbidden":
            hint = ""
            if known:
                close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
                if close:
                    hint = f" (did you mean '{close[0]}'?)"
            problems.append(f"unknown field '{field}'{hint}")
        else:
            problems.append(f"field '{field}': {message}")
    return "; ".join(problems)
