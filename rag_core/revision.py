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
        meta = self._read()
        meta[REVISION_KEY] = int(meta.get(REVISION_KEY, 0)) + 1
        self._write(meta)

    def moved(self, revision: int) -> bool:
        """Whether `revision` is not the one last seen (nothing seen yet: it has not moved)."""
        return self.seen not in (None, revision)
