"""SIGTERM ends a `migrate` command the way Ctrl-C does, so what the command started is cleaned up first.

Python's default SIGTERM ends the process at once: an embedded server the command started would keep
running with nobody to stop it. While a command runs (`handled()`), SIGTERM instead cancels the command's
asyncio task (`running_task()`; the coroutine's `finally` blocks run, which stop the server), or, outside
asyncio, raises KeyboardInterrupt. Ctrl-C works as Python and asyncio make it (the first one cancels the
task). `exit_interrupted()` then ends the command with 143 after SIGTERM, 130 after Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

import click

from src.migrate.errors import Exit

_task: asyncio.Task[Any] | None = None
_terminated = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    _terminated = True
    task = _task
    if task is not None and not task.done():
        task.cancel()
        task.get_loop().call_soon_threadsafe(lambda: None)  # wake the loop from its wait, as asyncio does for SIGINT
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGTERM handled as described while the block runs (main thread only; elsewhere nothing changes)."""
    global _terminated
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _terminated = False
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def running_task() -> Iterator[None]:
    """Inside a coroutine: the task SIGTERM cancels while the block runs."""
    global _task
    outer, _task = _task, asyncio.current_task()
    try:
        yield
    finally:
        _task = outer


def exit_interrupted(received: int | None = None) -> NoReturn:
    """After KeyboardInterrupt or a cancelled command task: say which signal ended the command (`received`,
    else SIGTERM if one came), exit with its code."""
    if received == signal.SIGTERM or (received is None and _terminated):
        click.echo("migrate: terminated", err=True)
        sys.exit(Exit.TERMINATED)
    click.echo("migrate: interrupted", err=True)
    sys.exit(Exit.INTERRUPTED)
