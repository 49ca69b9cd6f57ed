"""initData verification (bot/web/initdata.py) against strings built as Telegram builds them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from bot.web.initdata import InitDataError, sign_init_data, verify_init_data

TOKEN = "123456:ABC-test-token"
DAY = 24 * 3600
USER = {"id": 1001, "first_name": "Alice", "language_code": "zh-hans", "allows_write_to_pm": True}


def telegram_init_data(token: str, fields: dict[str, str]) -> str:
    """Signed independently of the module, straight from Telegram's description."""
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(key=b"WebAppData", msg=token.encode(), digestmod=hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()})


def test_a_genuine_init_data_gives_its_user():
    now = int(time.time())
    raw = telegram_init_data(TOKEN, {"query_id": "AAH", "user": json.dumps(USER), "auth_date": str(now),
                                     "signature": "abc", "chat_instance": "-42"})
    data = verify_init_data(raw, TOKEN, max_age_seconds=DAY, now=now + 60)
    assert data.user.id == 1001 and data.user.language_code == "zh-hans"
    assert verify_init_data(sign_init_data(TOKEN, USER, auth_date=now), TOKEN, max_age_seconds=DAY, now=now).user.id \
        == 1001


@pytest.mark.parametrize("mutate", [
    lambda raw: raw.replace("Alice", "Alicx"),  # a field changed after signing
    lambda raw: raw.replace("1001", "1002"),  # another user id
    lambda raw: raw + "&extra=1",  # a field added
    lambda raw: raw.rsplit("&hash=", 1)[0],  # no hash
    lambda raw: raw.rsplit("&hash=", 1)[0] + "&hash=" + "0" * 64,
    lambda raw: "user=%7B%22id%22%3A1001%7D&auth_date=1&hash=zz",
    lambda raw: "not a query string",
], ids=["changed", "other-user", "added", "no-hash", "zero-hash", "made-up", "garbage"])
def test_forgeries_are_refused(mutate):
    now = int(time.time())
    with pytest.raises(InitDataError):
        verify_init_data(mutate(sign_init_data(TOKEN, USER, auth_date=now)), TOKEN, max_age_seconds=DAY, now=now)


def test_another_bots_init_data_is_refused():
    raw = sign_init_data("654321:another", USER)
    with pytest.raises(InitDataError, match="signature"):
        verify_init_data(raw, TOKEN, max_age_seconds=DAY)


def test_age_limit_and_clock_skew():
    now = int(time.time())
    raw = sign_init_data(TOKEN, USER, auth_date=now - 3 * DAY)
    with pytest.raises(InitDataError, match="stale"):
        verify_init_data(raw, TOKEN, max_age_seconds=DAY, now=now)
    assert verify_init_data(raw, TOKEN, max_age_seconds=4 * DAY, now=now).user.id == 1001
    future = sign_init_data(TOKEN, USER, auth_date=now + 3600)
    with pytest.raises(InitDataError, match="future"):
        verify_init_data(future, TOKEN, max_age_seconds=DAY, now=now)
    assert verify_init_data(sign_init_data(TOKEN, USER, auth_date=now + 60), TOKEN, max_age_seconds=DAY, now=now)


@pytest.mark.parametrize("raw", [None, "", "x" * 10_000])
def test_missing_or_oversized_is_refused(raw):
    with pytest.raises(InitDataError):
        verify_init_data(raw, TOKEN, max_age_seconds=DAY)


def test_without_a_user_or_from_a_bot_it_is_refused():
    now = int(time.time())
    no_user = telegram_init_data(TOKEN, {"auth_date": str(now), "query_id": "AAH"})
    with pytest.raises(InitDataError, match="no user"):
        verify_init_data(no_user, TOKEN, max_age_seconds=DAY, now=now)
    with pytest.raises(InitDataError, match="no user"):
        verify_init_data(sign_init_data(TOKEN, {**USER, "is_bot": True}, auth_date=now), TOKEN,
                         max_age_seconds=DAY, now=now)
