"""API keys: who may call, in which role, on which collections, reading which document groups.

The keys file holds only SHA-256 hashes of high-entropy secrets (a slow KDF adds nothing for
random 256-bit tokens), so it can sit in a Kubernetes Secret or a backup without exposing keys.
A key reads `rag_<id>_<secret>`: the id finds the record, the secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rag_core.access import Access, validate_group
from rag_core.errors import ConfigError
from rag_server.metrics import KEYS_FILE_VALID

Role = Literal["reader", "admin"]
ROLES: tuple[Role, ...] = ("reader", "admin")
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_TOKEN = re.compile(r"^rag_([a-z0-9][a-z0-9-]{0,31})_([A-Za-z0-9_-]{20,200})$")
_DUMMY = hashlib.sha256(b"no such key").hexdigest()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiKey:
    id: str
    sha256: str
    role: Role
    groups: frozenset[str]
    collections: frozenset[str] | None  # None: every collection
    created: str

    @property
    def access(self) -> Access:
        return Access(self.groups)

    def may_use(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "role": self.role,
            "groups": sorted(self.groups),
            "collections": None if self.collections is None else sorted(self.collections),
            "created": self.created,
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> ApiKey:
        role = str(raw["role"])
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        collections = raw.get("collections")
        return cls(
            id=str(raw["id"]),
            sha256=str(raw["sha256"]),
            role=role,  # type: ignore[arg-type]
            groups=frozenset(validate_group(str(g)) for g in raw.get("groups") or []),  # type: ignore[attr-defined]
            collections=None if collections is None else frozenset(str(c) for c in collections),  # type: ignore[attr-defined]
            created=str(raw.get("created", "")),
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    """The keys file, re-read when it changes (a rotated Secret applies without a restart).

    Only the first read may fail loudly (the start stops, naming the file). A later change that
    cannot be read — a half-written or mistyped rotation — keeps the last good keys in service:
    failing every request instead would turn one bad edit into an outage. The failure is logged
    once per change and shown by `problem`, the readiness checks and `rag_api_keys_file_valid`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._loaded = False
        self.problem: str | None = None  # why the file now on disk is not the one in use

    def keys(self) -> dict[str, ApiKey]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:  # no file, no keys: every request is refused (401)
            self._loaded, self._stamp, self.problem = True, None, None
            KEYS_FILE_VALID.set(1)
            return {}
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._keys

    def _reload(self, stamp: tuple[int, int]) -> None:
        try:
            keys = read_keys(self.path)
        except ConfigError as exc:
            if not self._loaded:
                raise
            self._stamp, self.problem = stamp, exc.detail
            KEYS_FILE_VALID.set(0)
            log.error(
                "%s; serving the last good keys (%d) until it is fixed", exc.detail, len(self._keys)
            )
            return
        self._keys, self._stamp, self._loaded, self.problem = keys, stamp, True, None
        KEYS_FILE_VALID.set(1)

    def describe(self) -> str:
        """One line for the readiness checks."""
        keys = self.keys()
        if self.problem is not None:
            return f"serving the last good keys ({len(keys)}): {self.problem}"
        return f"ok ({len(keys)} keys)"

    def authenticate(self, token: str) -> ApiKey | None:
        """The key whose secret this is, or None. Constant-time in the secret."""
        match = _TOKEN.match(token)
        key = self.keys().get(match.group(1)) if match else None
        secret = match.group(2) if match else token
        ok = hmac.compare_digest(_digest(secret), key.sha256 if key else _DUMMY)
        return key if ok and key is not None else None


def read_keys(path: Path) -> dict[str, ApiKey]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        keys = [ApiKey.from_json(item) for item in raw.get("keys", [])]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot read API keys file {path} (RAG_AUTH__KEYS_FILE): {exc}") from exc
    return {k.id: k for k in keys}


def write_keys(path: Path, keys: Iterable[ApiKey]) -> None:
    """Atomic replace, owner-only permissions: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": 1, "keys": [k.as_json() for k in keys]}, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
    tmp.replace(path)


def new_key(
    key_id: str,
    role: Role,
    groups: frozenset[str] = frozenset(),
    collections: frozenset[str] | None = None,
) -> tuple[str, ApiKey]:
    """(the secret token, shown once; the record that stores only its hash)."""
    if not _KEY_ID.match(key_id):
        raise ValueError("key ids are 1-32 lowercase letters, digits or '-'")
    secret = secrets.token_urlsafe(32)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return f"rag_{key_id}_{secret}", ApiKey(
        key_id, _digest(secret), role, groups, collections, created
    )


def fresh_id() -> str:
    return "k" + secrets.token_hex(4)
