"""``/network-tokens/bulk``: upload a CSV file of cards, follow the job, get results."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool
from starlette.types import Receive

from cardvault.api.multipart import file_field
from cardvault.bulk import management
from cardvault.web.errors import UnsupportedMediaType
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply


class JobOut(BaseModel):
    """The document's description of :func:`cardvault.bulk.jobs.job_out`."""

    id: str
    state: str
    total: int
    processed: int
    succeeded: int
    failed: int
    created_at: str
    started_at: str | None
    finished_at: str | None


_CSV = {"type": "string", "description": "A header line, then one line per card"}
UPLOAD_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": _CSV},
        "application/csv": {"schema": _CSV},
        "text/plain": {"schema": _CSV},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


async def _stream(channel: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await channel()
        if message["type"] == "http.disconnect":
            return
        yield bytes(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _file_bytes(call: Call) -> AsyncIterator[bytes]:
    assert call.receive is not None
    content_type = call.content_type or ""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/csv", "text/plain"):
        return _stream(call.receive)
    if kind == "multipart/form-data":
        return file_field(_stream(call.receive), content_type)
    raise UnsupportedMediaType("send the file as text/csv or multipart/form-data (field 'file')")


async def upload(call: Call) -> Reply:
    """Store the file's rows and queue the job (202); a bad header is a 422 and
    creates nothing. A ``pan`` column also needs the ``cards:write`` scope."""
    return Reply.json(await management.upload(call.caller, _file_bytes(call)), 202)


async def status(call: Call) -> Reply:
    """The job's state and counts."""
    return Reply.json(await management.job_status(call.caller, call.params["job_id"]))


async def results(call: Call) -> Reply:
    """One CSV line per input row, in input order (never a PAN)."""
    job_id = call.params["job_id"]
    lines = iterate_in_threadpool(await management.job_results(call.caller, job_id))

    async def chunks() -> AsyncIterator[bytes]:
        async for line in lines:
            yield line.encode()

    headers = [
        (b"content-type", b"text/csv; charset=utf-8"),
        (b"content-disposition", f'attachment; filename="{job_id}-results.csv"'.encode()),
    ]
    return Reply(200, headers=headers, stream=chunks())


async def cancel(call: Call) -> Reply:
    """Stop the job; rows already processed keep their results."""
    return Reply.json(await management.cancel(call.caller, call.params["job_id"]))


TAGS = ("bulk enrolment",)
READ, WRITE = "network-tokens:read", "network-tokens:write"
ROUTES = [  # before /network-tokens/{pan_alias}
    Route(
        "POST",
        "/network-tokens/bulk",
        upload,
        scope=WRITE,
        status=202,
        response=JobOut,
        streamed=True,
        openapi={"requestBody": UPLOAD_BODY},
        tags=TAGS,
    ),
    Route("GET", "/network-tokens/bulk/{job_id}", status, scope=READ, response=JobOut, tags=TAGS),
    Route(
        "GET",
        "/network-tokens/bulk/{job_id}/results",
        results,
        scope=READ,
        openapi={"responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
        tags=TAGS,
    ),
    Route(
        "POST",
        "/network-tokens/bulk/{job_id}/cancel",
        cancel,
        scope=WRITE,
        response=JobOut,
        tags=TAGS,
    ),
]
