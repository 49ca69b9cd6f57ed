"""Time zones as people write and read them.

People write `+8`, `UTC+8`, `GMT-5`, `UTC+08:00` or `Asia/Shanghai`, and read offsets
as `UTC+08:00`. A whole-hour offset is kept as the IANA zone `Etc/GMT-8`, whose POSIX
sign is the opposite of what it means; so it is never shown as such: `zone_label`
turns it back into `UTC+08:00`, and a named zone is shown with its offset now
(`Asia/Shanghai (UTC+08:00)`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(00))?$", re.IGNORECASE)
_ETC = re.compile(r"^Etc/GMT([+-])(\d{1,2})$")
_UTC_NAMES = {"utc", "gmt", "z", "zulu", "etc/utc", "etc/gmt", "utc+0", "utc-0", "gmt+0", "gmt-0"}


def parse_zone(value: str) -> str | None:
    """The IANA key for what a person typed, or None. Whole-hour offsets (+8, UTC-5,
    GMT+08:00) become Etc/GMT∓N; names are checked against the tz database."""
    value = value.strip()
    if value.lower() in _UTC_NAMES:
        return "UTC"
    if match := _OFFSET.match(value):
        sign, hours, _ = match.groups()
        if int(hours) > 14:
            return None
        return "UTC" if int(hours) == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{int(hours)}"
    try:
        return ZoneInfo(value).key
    except (ZoneInfoNotFoundError, ValueError):
        return None


def offset_text(offset: timedelta | None) -> str:
    """UTC+08:00, UTC-05:00, UTC+05:30."""
    minutes = int((offset or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def zone_label(key: str, now: datetime) -> str:
    """How a person reads a zone: UTC+08:00 for offsets, 'Asia/Shanghai (UTC+08:00)' for names."""
    zone = ZoneInfo(key)
    offset = offset_text(now.astimezone(zone).utcoffset())
    if key == "UTC" or _ETC.match(key):
        return offset
    return f"{key} ({offset})"
