"""Log lines never carry a card number or a secret, whatever path brought them there."""

from __future__ import annotations

import contextvars
import logging

import orjson

from cardvault.web.logging import REQUEST_ID, JsonFormatter

SECRET = "cvs_PjdyWfbCyhXREEb2Un0ujZulGf-Qs779Py9nKRj35Fc"
HOOK_SECRET = "cvwh_q2xkT0k3Yx9c8Zs1Vw4Hn6Mb5Lp7Rt2Ey8Ua3Io0Pq"


def _format(message: str, *args: object, exc: BaseException | None = None) -> dict[str, str]:
    record = logging.makeLogRecord(
        {"msg": message, "args": args, "levelname": "ERROR", "name": "t", "extra_pan": args}
    )
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    line = JsonFormatter().format(record)
    return dict(orjson.loads(line))


def test_a_card_number_in_a_message_an_extra_or_a_traceback_is_masked() -> None:
    try:
        raise ValueError("bad row 4242 4242 4242 4242")
    except ValueError as error:
        entry = _format("row %s failed", "4111-1111-1111-1111", exc=error)

    line = orjson.dumps(entry).decode()
    for digits in ("4242424242424242", "4242 4242 4242 4242", "4111111111111111", "1111-1111"):
        assert digits not in line
    assert "424242…4242" in entry["exception"]
    assert entry["message"] == "row 411111…1111 failed"


def test_secrets_are_cut_to_their_prefix() -> None:
    entry = _format("client %s hook %s", SECRET, HOOK_SECRET)

    assert entry["message"] == "client cvs_**** hook cvwh_****"


def test_a_line_logged_while_a_request_is_answered_carries_its_id() -> None:
    def during_request() -> dict[str, str]:
        REQUEST_ID.set("req-7")
        return _format("the network did not answer")

    assert contextvars.copy_context().run(during_request)["request_id"] == "req-7"
    assert "request_id" not in _format("a background loop's line")
