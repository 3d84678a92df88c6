"""Split a rows file (CSV or JSON lines) into request bodies for `POST /v1/datasets/{name}/rows`.

Each chunk is a complete body (CSV chunks repeat the header) and remembers which line of the
file each of its lines came from, so errors the server reports per chunk point into the file.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from models.row_formats import CSV, NDJSON


@dataclass
class Chunk:
    body: bytes
    rows: int
    file_lines: list[int]  # file_lines[i] is the file line of the chunk's line i + 1

    def file_line(self, chunk_line: int | None) -> int | None:
        if chunk_line is None or not 1 <= chunk_line <= len(self.file_lines):
            return None
        return self.file_lines[chunk_line - 1]


def format_of(filename: str) -> str | None:
    lower = filename.lower()
    if lower.endswith(".csv"):
        return CSV
    if lower.endswith((".ndjson", ".jsonl", ".json")):
        return NDJSON
    return None


def chunks(file: BinaryIO, kind: str, rows_per_chunk: int) -> Iterator[Chunk]:
    return _csv_chunks(file, rows_per_chunk) if kind == CSV else _ndjson_chunks(file, rows_per_chunk)


def _ndjson_chunks(file: BinaryIO, rows_per_chunk: int) -> Iterator[Chunk]:
    lines: list[bytes] = []
    first = 1
    rows = 0
    for number, line in enumerate(file, start=1):
        lines.append(line if line.endswith(b"\n") else line + b"\n")
        rows += bool(line.strip())
        if rows >= rows_per_chunk:
            yield Chunk(b"".join(lines), rows, list(range(first, number + 1)))
            lines, first, rows = [], number + 1, 0
    if rows:
        yield Chunk(b"".join(lines), rows, list(range(first, first + len(lines))))


def _csv_chunks(file: BinaryIO, rows_per_chunk: int) -> Iterator[Chunk]:
    reader = csv.reader(io.TextIOWrapper(file, encoding="utf-8-sig", newline=""))
    header = next(reader, None)
    if header is None:
        return
    header_end = reader.line_num
    out, writer, file_lines, rows = _new_chunk(header, header_end)
    previous_end = header_end
    for record in reader:
        # The writer keeps a quoted field's embedded newlines, so the record spans as many
        # lines in the chunk as it did in the file.
        span = range(previous_end + 1, reader.line_num + 1)
        previous_end = reader.line_num
        if not record:
            continue
        writer.writerow(record)
        file_lines.extend(span)
        rows += 1
        if rows >= rows_per_chunk:
            yield Chunk(out.getvalue().encode(), rows, file_lines)
            out, writer, file_lines, rows = _new_chunk(header, header_end)
    if rows:
        yield Chunk(out.getvalue().encode(), rows, file_lines)


def _new_chunk(header: list[str], header_end: int):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    return out, writer, list(range(1, header_end + 1)), 0
