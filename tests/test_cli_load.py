"""`sojourn load`: chunked upload through the real API (uvicorn in a thread), errors mapped to file lines."""

import socket
import threading
import time
import uuid

import psycopg
import pytest
import uvicorn
from typer.testing import CliRunner

from api.main import create_app
from cli import app as cli_app
from models.row_chunks import chunks
from models.row_formats import CSV


@pytest.fixture(scope="module")
def api_url(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def declare(api_url: str, name: str) -> None:
    import httpx

    response = httpx.put(f"{api_url}/v1/datasets/{name}",
                         json={"primary_key": "id", "columns": {"id": "integer", "city": "text"}})
    assert response.status_code == 200, response.text


def test_load_csv_in_chunks(api_url, database_url, tmp_path):
    name = f"cli_{uuid.uuid4().hex[:8]}"
    declare(api_url, name)
    path = tmp_path / "rows.csv"
    path.write_text("id,city\n" + "".join(f'{i},"City {i}\nline two"\n' if i == 7 else f"{i},City {i}\n"
                                          for i in range(1, 26)))
    result = CliRunner().invoke(cli_app, ["load", name, str(path), "--api-url", api_url, "--rows-per-chunk", "10"])
    assert result.exit_code == 0, result.output
    assert "Loaded 25 rows" in result.output
    with psycopg.connect(database_url) as conn:
        assert conn.execute(f'SELECT count(*), max(id) FROM "ds_{name}"').fetchone() == (25, 25)
        assert conn.execute(f'SELECT city FROM "ds_{name}" WHERE id = 7').fetchone() == ("City 7\nline two",)


def test_load_reports_file_lines_of_a_rejected_chunk(api_url, database_url, tmp_path):
    name = f"cli_{uuid.uuid4().hex[:8]}"
    declare(api_url, name)
    path = tmp_path / "rows.ndjson"
    lines = [f'{{"id": {i}, "city": "c"}}' for i in range(1, 31)]
    lines[22] = '{"id": "twenty-three"}'  # file line 23, in the third chunk
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli_app, ["load", name, str(path), "--api-url", api_url, "--rows-per-chunk", "10"])
    assert result.exit_code == 1
    assert "line 23, column id" in result.output and "20 rows from earlier chunks" in result.output
    with psycopg.connect(database_url) as conn:
        assert conn.execute(f'SELECT count(*) FROM "ds_{name}"').fetchone() == (20,)


def test_csv_chunks_map_lines_back_to_the_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b'a,b\n1,x\n2,"multi\nline"\n\n3,z\n')
    with path.open("rb") as handle:
        got = [(c.body, c.file_lines) for c in chunks(handle, CSV, 2)]
    assert got == [(b'a,b\n1,x\n2,"multi\nline"\n', [1, 2, 3, 4]), (b"a,b\n3,z\n", [1, 6])]
