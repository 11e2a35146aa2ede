"""Who may read what: document groups, and a caller's access to them. Shared by ingestion (which
stamps documents with groups) and the server (which checks a caller's key against them)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ALL_GROUPS = "*"
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_group(name: str) -> str:
    if name != ALL_GROUPS and not _GROUP.match(name):
        raise ValueError(
            f"invalid group {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (or '*' for every group)"
        )
    return name


def parse_groups(text: str) -> frozenset[str]:
    """'hr, all' -> {'hr', 'all'}; empty text -> no groups (public documents only)."""
    return frozenset(validate_group(g.strip()) for g in re.split(r"[,\s]+", text) if g.strip())


@dataclass(frozen=True)
class Access:
    """Which documents a caller may read: public ones, plus those stamped with one of `groups`."""

    groups: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return ALL_GROUPS in self.groups

    def admits(self, document_groups: Iterable[str]) -> bool:
        stamped = set(document_groups)
        return not stamped or self.everything or bool(stamped & self.groups)


UNRESTRICTED = Access(frozenset({ALL_GROUPS}))
