"""The collection's write counter, kept in the collection's metadata so that every process sees
it: each write bumps it, and a reader that finds it moved rebuilds what it derives from the rows
(the keyword index) and, for an embedded store, reopens the client to see the new rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REVISION_KEY = "revision"


class RevisionCounter:
    """Reads and bumps the counter through the collection's metadata, and remembers the revision
    this process last saw."""

    def __init__(
        self,
        read_metadata: Callable[[], dict[str, Any]],
        write_metadata: Callable[[dict[str, Any]], None],
    ) -> None:
        self._read = read_metadata  # read fresh: another process may have written
        self._write = write_metadata
        self.seen: int | None = None

    def current(self) -> int:
        return int(self._read().get(REVISION_KEY, 0))

    def bump(self) -> None:
        """Count one write of this process. When the counter stood at the revision this process
        last saw, nobody else has written since, and this process's client holds its own write:
        the new revision is seen too, so the process does not reopen its store for its own
        writes. (Each reopen of an embedded store leaves some memory behind: a server replacing
        uploads grew by about 4 MB per upload when it reopened after each one.) Writes to one
        embedded store are serialised by the writer lock, so no other write lands between the
        read and the write here."""
        meta = self._read()
        before = int(meta.get(REVISION_KEY, 0))
        meta[REVISION_KEY] = before + 1
        self._write(meta)
        if self.seen == before:
            self.seen = before + 1

    def moved(self, revision: int) -> bool:
        """Whether `revision` is not the one last seen (nothing seen yet: it has not moved)."""
        return self.seen not in (None, revision)
