"""``/network-tokens/bulk``: upload a CSV file of cards, follow the job, get results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from cardvault.api.auth import check_scope
from cardvault.api.multipart import file_field
from cardvault.api.vault import VaultCaller, vault_caller
from cardvault.bulk import jobs
from cardvault.bulk.csvfile import Columns
from cardvault.bulk.results import result_lines
from cardvault.bulk.upload import receive
from cardvault.web.errors import ApiError

router = APIRouter(prefix="/network-tokens/bulk", tags=["bulk enrolment"])

Writer = Annotated[VaultCaller, Depends(vault_caller("network-tokens:write"))]
Reader = Annotated[VaultCaller, Depends(vault_caller("network-tokens:read"))]


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


class CsvResponse(StreamingResponse):
    media_type = "text/csv"


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


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported-media-type"


async def _job(caller: VaultCaller, job_id: str) -> Any:
    def read() -> Any:
        with caller.runtime.db.engine.connect() as conn:
            return jobs.read_job(conn, caller.vault_id, job_id)

    return await caller.runtime.run_db(read)


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _file_bytes(request: Request) -> AsyncIterator[bytes]:
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/csv", "text/plain"):
        return request.stream()
    if kind == "multipart/form-data":
        return file_field(request.stream(), content_type)
    raise UnsupportedMediaType("send the file as text/csv or multipart/form-data (field 'file')")


@router.post("", status_code=202, response_model=JobOut, openapi_extra={"requestBody": UPLOAD_BODY})
async def upload(request: Request, caller: Writer) -> Response:
    """Store the file's rows and queue the job (202); a bad header is a 422 and
    creates nothing. A ``pan`` column also needs the ``cards:write`` scope."""

    def on_header(columns: Columns) -> None:
        if columns.has_pan:
            check_scope(caller.principal, "cards:write")

    runtime = caller.runtime
    job_id = await receive(
        _file_bytes(request),
        db=runtime.db,
        owner=jobs.Owner(caller.vault_id, caller.org_id, caller.principal.client_id),
        cipher=runtime.vault_keys.cipher(caller.vault_id),
        run_db=runtime.run_db,
        on_header=on_header,
    )
    job = await _job(caller, job_id)
    runtime.audit.add(caller.record("bulk_job.create", "bulk_job", job_id, total=job.total))
    return _json(jobs.job_out(job), 202)


@router.get("/{job_id}", response_model=JobOut)
async def status(job_id: str, caller: Reader) -> Response:
    return _json(jobs.job_out(await _job(caller, job_id)))


@router.get("/{job_id}/results", response_class=CsvResponse)
async def results(job_id: str, caller: Reader) -> CsvResponse:
    """One CSV line per input row, in input order (never a PAN)."""
    db = caller.runtime.db
    job = await _job(caller, job_id)
    caller.runtime.audit.add(caller.record("bulk_job.results", "bulk_job", job_id))
    return CsvResponse(
        result_lines(db, job_id, job.state),
        headers={"Content-Disposition": f'attachment; filename="{job_id}-results.csv"'},
    )


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel(job_id: str, caller: Writer) -> Response:
    """Stop the job; rows already processed keep their results."""
    job = await caller.runtime.run_db(jobs.cancel_job, caller.runtime.db, caller.vault_id, job_id)
    caller.runtime.audit.add(caller.record("bulk_job.cancel", "bulk_job", job_id))
    return _json(jobs.job_out(job))
