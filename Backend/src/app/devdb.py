"""`migrate db start|stop|status|url`: the embedded PostgreSQL as a dev database for your app.

Exit codes (the table in `src.migrate.errors`): 0 done; 2 the data folder cannot hold a server (named);
3 the server could not be started or stopped; 9 `status`/`url`: no dev server runs there, `stop`: the
server there was started by another command, which stops it (left alone); 130/143 Ctrl-C/SIGTERM during
`start` (the server it was starting is stopped again). `url` prints the URL and nothing else, for
`$(migrate db url)`; it holds no password, since the server only takes connections through its socket in
the data folder. The logic is `src.migrate.devdb`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from src.app import render, signals
from src.migrate import devdb
from src.migrate.errors import ConfigError, ConnectionFailed, Exit
from src.postgres import embedded
from src.postgres.settings import from_environment, read_environment


@click.group()
def db() -> None:
    """The embedded PostgreSQL as a dev database for your app, kept running between commands.

    Its data lives in EMBEDDED_PGDATA (default .pgdata in the project); it listens on a unix socket in
    that folder only. Point the app at it with the DATABASE_URL that `migrate db start` prints (or
    `--write-env` to put it in .env). While it runs, `migrate` commands with no database configured use it.
    """


def _data_dir() -> Path:
    return Path(read_environment().get(embedded.ENV_DATA_DIR) or embedded.DEFAULT_DATA_DIR).expanduser().resolve()


def _failed(exc: embedded.EmbeddedServerError) -> NoReturn:
    if isinstance(exc, embedded.DataDirError | embedded.NotInstalled):
        render.fail(ConfigError(str(exc)), as_json=False)
    render.fail(ConnectionFailed(str(exc)), as_json=False)


def _note_other_database(server: devdb.DevServer) -> None:
    """Say so when DATABASE_URL / DB_* point elsewhere: then the app and `migrate` do not use this server."""
    try:
        configured = from_environment(read_environment())
    except ValueError:
        return
    if configured is not None and (configured.host, configured.port) != (server.settings.host, server.settings.port):
        click.echo(
            f"migrate: note: a database is configured ({configured.describe()}), so the app and `migrate` use "
            f"that one, not this server, until you change DATABASE_URL / DB_*",
            err=True,
        )


@db.command("start")
@click.option(
    "--write-env",
    is_flag=True,
    help="Also set DATABASE_URL in ./.env (created if missing; every other line is kept as it is).",
)
def db_start(write_env: bool) -> None:
    """Start the dev PostgreSQL, or find it running; it keeps running until `migrate db stop`.

    Prints the `export DATABASE_URL=...` line for your shell.
    """
    data_dir = _data_dir()
    with embedded.DeferredSignals() as starting:
        try:
            started = devdb.start(data_dir)
        except embedded.EmbeddedServerError as exc:
            _failed(exc)
    if starting.noted:
        if not started.already_running and not started.adopted:  # interrupted while starting: stop it
            with embedded.DeferredSignals():
                devdb.stop(data_dir)
        try:
            starting.deliver()
        except KeyboardInterrupt:
            signals.exit_interrupted()
    for note in started.recovered:
        click.echo(f"migrate: {note}", err=True)
    server = started.server
    if started.already_running:
        click.echo(f"The dev PostgreSQL is already running in {server.data_dir} (pid {server.pid}).")
    elif started.adopted:
        click.echo(
            f"The PostgreSQL a running migrate command started in {server.data_dir} (pid {server.pid}) now keeps "
            f"running until `migrate db stop`."
        )
    else:
        click.echo(
            f"Started the dev PostgreSQL {server.version} in {server.data_dir} (pid {server.pid}); "
            f"it keeps running until `migrate db stop`."
        )
    click.echo("Point your app at it:")
    click.echo(devdb.export_line(server.url))
    if write_env:
        written = devdb.write_env(Path(".env"), server.url)
        done = "Set" if written.changed else "Already set:"
        click.echo(f"{done} DATABASE_URL in {written.path} (other lines unchanged).")
    _note_other_database(server)


@db.command("stop")
def db_stop() -> None:
    """Stop the dev PostgreSQL cleanly (its data stays in EMBEDDED_PGDATA).

    Only a server `migrate db start` started: one a running command started is left to that command (exit 9).
    """
    data_dir = _data_dir()
    try:
        with embedded.DeferredSignals() as stopping:
            stopped = devdb.stop(data_dir)
    except embedded.EmbeddedServerError as exc:
        _failed(exc)
    if stopped.left_running is not None:
        click.echo(
            f"migrate: error: the PostgreSQL in {data_dir} (pid {stopped.left_running.pid}) was started by a "
            f"migrate command still running, not by `migrate db start`; it stops when that command ends. "
            f"Nothing was stopped.",
            err=True,
        )
        sys.exit(Exit.NO_DEV_SERVER)
    if stopped.pid is None:
        click.echo(f"The dev PostgreSQL in {data_dir} was not running.")
    else:
        click.echo(f"Stopped the dev PostgreSQL in {data_dir} (pid {stopped.pid}).")
    try:
        stopping.deliver()
    except KeyboardInterrupt:
        signals.exit_interrupted()


@db.command("status")
def db_status() -> None:
    """Whether the dev PostgreSQL runs, its version, data folder, pid and URL; exit 0 running, 9 not."""
    data_dir = _data_dir()
    current = embedded.state(data_dir)
    server = devdb.find(data_dir)
    if server is None:
        click.echo("running  no")
        held = embedded.data_version(data_dir)
        click.echo(
            f"version  PostgreSQL {embedded.binary_version()} "
            f"({f'data of PostgreSQL {held}' if held else 'no data yet'})"
        )
        click.echo(f"data     {data_dir}")
        if current.stale_pid:
            click.echo(f"note     a stale postmaster.pid names pid {current.stale_pid}; `migrate db start` removes it")
        click.echo("Start it with `migrate db start`.", err=True)
        sys.exit(Exit.NO_DEV_SERVER)
    how = (
        "kept running by `migrate db start`"
        if server.kept
        else "started by a migrate command still running; it stops when that command ends"
    )
    click.echo(f"running  yes, pid {server.pid}, {how}")
    click.echo(f"version  PostgreSQL {server.version}")
    click.echo(f"data     {server.data_dir}")
    click.echo(f"url      {server.url}")


@db.command("url")
@click.option("--export", "as_export", is_flag=True, help="Print `export DATABASE_URL=...` for a shell's eval.")
def db_url(as_export: bool) -> None:
    """Print the dev PostgreSQL's URL only, for `export DATABASE_URL=$(migrate db url)`; exit 9 when not running."""
    data_dir = _data_dir()
    server = devdb.find(data_dir)
    if server is None:
        click.echo(f"migrate: error: no dev PostgreSQL runs in {data_dir}; start it with `migrate db start`", err=True)
        sys.exit(Exit.NO_DEV_SERVER)
    click.echo(devdb.export_line(server.url) if as_export else server.url)
