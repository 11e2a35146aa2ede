"""The audit trail: one JSON line per ask, search, chat completion, upload and delete.

Who (key id, never the key), what (collection, question or its hash), what came back (document
ids), how it ended and how long it took — enough to trace any answer to the caller who got it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rag_core.errors import RagError
from rag_core.settings import AuditSettings


@dataclass
class AuditEntry:
    action: str
    key_id: str
    collection: str
    question: str | None = None
    documents: list[str] = field(default_factory=list)
    status: str = "ok"


def open_private(path: Path) -> TextIO:
    """Append to `path`, creating it owner-only (0600) and any missing folders owner-only (0700):
    the log holds questions in plain text unless they are hashed, and who asked them."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


class Auditor:
    def __init__(self, settings: AuditSettings) -> None:
        self.hash_questions = settings.hash_questions
        self._path = None if settings.path == "-" else Path(settings.path)
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def _out(self) -> TextIO:
        if self._path is None:
            return sys.stdout
        if self._file is None:
            self._file = open_private(self._path)
        return self._file

    @contextmanager
    def record(
        self, action: str, key_id: str, collection: str, question: str | None = None
    ) -> Iterator[AuditEntry]:
        """Log the entry when the block ends, however it ends; the block fills in what it learns."""
        entry = AuditEntry(action, key_id, collection, question)
        began = time.perf_counter()
        try:
            yield entry
        except RagError as exc:
            entry.status = f"error {exc.status}"
            raise
        except BaseException:
            entry.status = "error"
            raise
        finally:
            self.write(entry, (time.perf_counter() - began) * 1000)

    def write(self, entry: AuditEntry, latency_ms: float) -> None:
        line: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "action": entry.action,
            "key_id": entry.key_id,
            "collection": entry.collection,
        }
        if entry.question is not None:
            if self.hash_questions:
                line["question_sha256"] = hashlib.sha256(entry.question.encode()).hexdigest()
            else:
                line["question"] = entry.question
        line["documents"] = list(dict.fromkeys(entry.documents))
        line["status"] = entry.status
        line["latency_ms"] = round(latency_ms, 1)
        text = json.dumps(line, ensure_ascii=False) + "\n"
        with self._lock:
            out = self._out()
            out.write(text)
            out.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
