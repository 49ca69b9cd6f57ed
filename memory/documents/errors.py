"""The one error type of document extraction and fetching.

Every refusal the library makes is a `DocumentError` carrying a machine `code` (a
member of `ErrorCode`, a `str` enum so it compares equal to its plain value) and a
short English `message` that says what is wrong and how to fix it. The bot layer
shows the message as is, or translates the code into the user's language; it never
needs to look at a traceback. Errors from third-party parsers are wrapped at the
format boundary so nothing else leaks out.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    TOO_LARGE = "too_large"  # the file (or the downloaded body) is over the byte limit
    TOO_LONG = "too_long"  # the extracted text is over the character limit
    ZIP_BOMB = "zip_bomb"  # an archive would expand too far or too steeply
    ENCRYPTED = "encrypted"  # password-protected PDF / encrypted archive member
    CORRUPT = "corrupt"  # the file cannot be parsed as the format it claims to be
    EMPTY = "empty"  # zero bytes, or a text file holding only whitespace
    NO_TEXT = "no_text"  # parsed fine but holds no text (scanned PDF, image-only EPUB)
    UNSUPPORTED = "unsupported"  # a format this library does not read (.doc, .mobi, images)
    ENCODING = "encoding"  # a text file whose character encoding cannot be recognised
    BAD_URL = "bad_url"  # not an http(s) URL with a host
    BLOCKED_ADDRESS = "blocked_address"  # the link points at a private/internal address
    FETCH_FAILED = "fetch_failed"  # DNS failure, connection error or an HTTP error status
    TIMEOUT = "timeout"  # the download took longer than the limit
    TOO_MANY_REDIRECTS = "too_many_redirects"


class DocumentError(Exception):
    """A refusal with a user-facing `message` and a machine `code`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"DocumentError({self.code.value!r}, {self.message!r})"
