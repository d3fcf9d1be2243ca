"""Reading ``application/x-www-form-urlencoded`` bodies (RFC 6749 Appendix B)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from cardvault.oauth.errors import InvalidRequest

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_NAME, MAX_VALUE = 64, 4096  # an access token to introspect is the longest value


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """Parse the body; repeated or overlong parameters and malformed encodings are
    ``invalid_request``. (The input layer has already refused control characters and
    card numbers in it.)"""
    if not body:
        return {}  # an empty body carries no parameters, whatever its declared type
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidRequest(f"Content-Type must be {FORM_TYPE}")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("Malformed form body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise InvalidRequest(f"Parameter {name[:MAX_NAME]} is too long")
        if name in form:
            raise InvalidRequest(f"Parameter {name} is repeated")
        form[name] = value
    return form
