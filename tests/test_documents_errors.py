from memory.documents.errors import DocumentError, ErrorCode


def test_codes_are_stable_strings_for_the_integrator():
    assert {code.value for code in ErrorCode} == {
        "too_large", "too_long", "zip_bomb", "encrypted", "corrupt", "empty", "no_text", "unsupported",
        "encoding", "bad_url", "blocked_address", "fetch_failed", "timeout", "too_many_redirects",
    }
    assert ErrorCode.ZIP_BOMB == "zip_bomb"


def test_error_carries_code_and_message():
    error = DocumentError(ErrorCode.EMPTY, "The file is empty.")
    assert (error.code, error.message, str(error)) == (ErrorCode.EMPTY, "The file is empty.", "The file is empty.")
    assert repr(error) == "DocumentError('empty', 'The file is empty.')"
