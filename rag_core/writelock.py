"""One writer per embedded store directory: an exclusive, non-blocking lock file in the Chroma dir.

Chroma's embedded store is files on a volume; two processes writing them at once race each other.
Writers (rag-ingest, and any write path in the server) hold this lock while they write; readers
(the serving process) take nothing, so search keeps working during an ingest. A Chroma server
(RAG_STORE__MODE=http) orders writes itself, so there the lock is not taken. The kernel drops the
lock when its holder dies, even by kill -9, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rag_core.errors import StoreLockedError

if TYPE_CHECKING:
    from rag_core.settings import Settings

LOCK_NAME = "rag-writer.lock"


def _holder(handle: int) -> str:
    """Who holds the lock, as the holder wrote it into the file."""
    try:
        raw = os.pread(handle, 4096, 0).decode("utf-8", "replace")
        info = json.loads(raw)
        return (
            f"{info.get('command', '?')} (pid {info.get('pid', '?')} on host "
            f"{info.get('host', '?')}, since {info.get('since', '?')})"
        )
    except (OSError, ValueError):
        return "another process"


@contextlib.contextmanager
def exclusive_writer(directory: Path, command: str) -> Iterator[None]:
    """Hold the directory's writer lock for the block, or fail at once naming the holder."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreLockedError(
                f"the vector store in {directory} is being written by {_holder(handle)}; "
                "only one writer at a time may use an embedded store: wait for it to finish, "
                "or use a Chroma server (RAG_STORE__MODE=http)"
            ) from None
        info = {
            "command": command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # Who holds the lock is only for others' error messages: on a full disk the lock still
        # holds (flock needs no space), and the writer's own clear "disk full" error follows.
        with contextlib.suppress(OSError):
            os.ftruncate(handle, 0)
            os.pwrite(handle, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def store_writer(
    settings: Settings, command: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """The writer lock an embedded store needs; nothing for a Chroma server (it orders writes)."""
    if settings.store.mode != "embedded":
        return contextlib.nullcontext()
    return exclusive_writer(settings.chroma_dir, command or Path(sys.argv[0]).name)
