"""Google error bodies (golden fixtures) as OpenAI error fields and statuses."""

from __future__ import annotations

from calcifer.providers.gemini_errors import gemini_error_fields, gemini_status, retry_delay
from tests.providers.test_gemini_wire import FIXTURES, load


def test_bad_key_maps_to_401_with_openai_fields() -> None:
    raw = (FIXTURES / "error_bad_key.json").read_bytes()
    assert gemini_status(400, raw) == 401
    assert gemini_error_fields(raw) == (
        "API key not valid. Please pass a valid API key.",
        "authentication_error",
        "invalid_api_key",
        None,
    )


def test_other_errors_keep_status_and_name_their_kind() -> None:
    quota = (FIXTURES / "error_quota.json").read_bytes()
    missing = (FIXTURES / "error_not_found.json").read_bytes()
    assert gemini_status(429, quota) == 429
    fields = gemini_error_fields(quota)
    assert fields is not None and fields[1:] == ("rate_limit_error", "resource_exhausted", None)
    assert retry_delay(quota) == "7.0"
    assert gemini_error_fields(missing) == (
        load("error_not_found.json")["error"]["message"],
        "not_found_error",
        "not_found",
        None,
    )
    assert gemini_error_fields(b"<html>oops</html>") is None
    assert gemini_error_fields(b'[{"error": {"code": 500, "message": "x", "status": "INTERNAL"}}]') == (
        "x",
        "server_error",
        "internal",
        None,
    )
