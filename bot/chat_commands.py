"""The words of chat commands, the same in every face: `/memory edit 2 TEXT` read into
a service-layer call. Telegram's handlers and the terminal chat both use these, so a
command is typed the same way wherever it is typed."""

from __future__ import annotations

from memory.service import CompanionService, Notice, Place


def memory_change(service: CompanionService, place: Place, args: str) -> Notice:
    """`/memory add TEXT`, `/memory edit N TEXT`, `/memory delete N` as service calls."""
    action, _, rest = args.strip().partition(" ")
    action = action.lower()
    if action in ("add", "+"):
        return service.add_fact(place, rest)
    number, _, new_text = rest.strip().partition(" ")
    if not number.isdigit() or action not in ("edit", "delete", "del"):
        return Notice("tg.memory_usage")
    if action == "edit":
        return service.edit_fact(place, int(number), new_text)
    return service.delete_fact(place, int(number))
