"""Streaming the file field out of a ``multipart/form-data`` body.

python-multipart's push parser is fed the request body chunk by chunk; only the bytes
of the file part (field ``file``, else the first part with a filename) are passed on.
Nothing is spooled to memory or disk. A malformed body, or one cut short before its
closing boundary, is refused (422): a cut file must not pass for a whole one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from cardvault.problems import Unprocessable


class _FilePart:
    def __init__(self) -> None:
        self.header_field = b""
        self.header_value = b""
        self.disposition = b""
        self.in_file = False
        self.found = False
        self.ended = False
        self.data: list[bytes] = []

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        wanted = options.get(b"name") == b"file" or b"filename" in options
        self.in_file = wanted and not self.found
        self.found = self.found or self.in_file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.data.append(data[start:end])

    def on_part_end(self) -> None:
        self.in_file = False

    def on_end(self) -> None:
        self.ended = True


def boundary_of(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Unprocessable("multipart/form-data without a boundary")
    return boundary


async def file_field(body: AsyncIterator[bytes], content_type: str) -> AsyncIterator[bytes]:
    """The file part's bytes, as they arrive."""
    part = _FilePart()
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": part.on_part_begin,
            "on_header_field": part.on_header_field,
            "on_header_value": part.on_header_value,
            "on_header_end": part.on_header_end,
            "on_headers_finished": part.on_headers_finished,
            "on_part_data": part.on_part_data,
            "on_part_end": part.on_part_end,
            "on_end": part.on_end,
        },
    )
    async for chunk in body:
        _parse(parser.write, chunk)
        if part.data:
            yield b"".join(part.data)
            part.data.clear()
    _parse(parser.finalize)
    if not part.ended:
        raise Unprocessable("the multipart body ends before its closing boundary")
    if part.data:
        yield b"".join(part.data)
    if not part.found:
        raise Unprocessable("multipart upload without a file field (name it 'file')")


def _parse(step: Callable[..., object], *chunk: bytes) -> None:
    """One step of the parser; its error (which may quote the body) is not passed on."""
    failed = False
    try:
        step(*chunk)
    except MultipartParseError:
        failed = True
    if failed:
        raise Unprocessable("the multipart body is malformed")
