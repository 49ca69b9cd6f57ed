"""The Mini App's `initData`, checked as Telegram specifies.

Telegram hands the page a query string (`Telegram.WebApp.initData`, or `tgWebAppData` in
the URL fragment) signed with the bot's token: the data-check string is every field but
`hash`, sorted by key, as `key=value` lines; the secret is HMAC-SHA256(key "WebAppData",
message bot token); `hash` is HMAC-SHA256(secret, data-check string) in hex. aiogram's
`check_webapp_signature` does exactly that, with a constant-time compare. On top of it,
`auth_date` must be recent (24 hours by default, `COMPANION_WEB_AUTH_MAX_AGE`) so a copied
link stops working, and a `user` must be present: the user id comes only from here.

`sign_init_data` makes the same string, for tests and for `companion web --dev-link`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from aiogram.utils.web_app import WebAppInitData, check_webapp_signature, parse_webapp_init_data

MAX_INIT_DATA_CHARS = 8192
CLOCK_SKEW_SECONDS = 300  # an auth_date this far in the future is still accepted


class InitDataError(Exception):
    """initData that is missing, forged, stale or without a user; the reason is for logs."""


def verify_init_data(raw: str | None, token: str, *, max_age_seconds: float,
                     now: float | None = None) -> WebAppInitData:
    if not raw:
        raise InitDataError("missing")
    if len(raw) > MAX_INIT_DATA_CHARS:
        raise InitDataError("too long")
    if not check_webapp_signature(token, raw):
        raise InitDataError("bad signature")
    try:
        data = parse_webapp_init_data(raw)
    except (ValueError, TypeError) as exc:
        raise InitDataError(f"unreadable: {type(exc).__name__}") from None
    age = (time.time() if now is None else now) - data.auth_date.timestamp()
    if age > max_age_seconds:
        raise InitDataError(f"stale ({age / 3600:.1f} h old)")
    if age < -CLOCK_SKEW_SECONDS:
        raise InitDataError("auth_date in the future")
    if data.user is None or data.user.is_bot:
        raise InitDataError("no user")
    return data


def sign_init_data(token: str, user: dict, *, auth_date: int | None = None, **fields: str) -> str:
    """initData as Telegram would send it for `user` (a WebAppUser dict)."""
    values = {"user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
              "auth_date": str(int(time.time()) if auth_date is None else auth_date), **fields}
    check = "\n".join(f"{key}={values[key]}" for key in sorted(values))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    values["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(values)
