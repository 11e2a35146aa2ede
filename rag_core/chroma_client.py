"""Getting a Chroma client that behaves: telemetry off, a server waited for at start-up, every
HTTP call bounded in time, an embedded store reopened to see other processes' writes, an
unreachable server reported as StoreUnavailableError (a 503) rather than a transport error, and a
read that raced a write read again rather than failed."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

import httpx

from rag_core.errors import StoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from rag_core.settings import Settings

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
READ_TRIES = 3  # a read that raced a write, tried this often before the store counts as unavailable


def reachable(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Chroma server that cannot be reached is a 503 (StoreUnavailableError), not a 500."""

    @functools.wraps(call)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return call(*args, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc

    return wrapper


class TornReadError(Exception):
    """A read returned a record half-gone (an id without its metadata): a delete landed mid-read."""


class Rereadable(Protocol):
    """A reader of one collection that can catch up with writes its client has not seen."""

    collection: Collection

    def catch_up(self, stale: Collection) -> None:
        """Make the next read see the store as it is now, unless that happened since `stale`."""


_S = TypeVar("_S", bound=Rereadable)


def reread_on_race(
    read: Callable[Concatenate[_S, _P], _R],
) -> Callable[Concatenate[_S, _P], _R]:
    """A read that raced a write is read again, from the store as it is now; one that keeps
    failing is StoreUnavailableError (a 503 with Retry-After), not a 500.

    Chroma fails a read whose vector index and records disagree (InternalError "Error finding
    id"): an embedded client's in-memory index misses another client's or process's writes until
    it is reopened, and a query can meet a delete half-applied. So the store catches up before
    each new try. Only reads are decorated: a failed write may have half-landed, and repeating it
    blindly could hide that; it is reported as it is.
    """

    @functools.wraps(read)
    def again(store: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        for _ in range(READ_TRIES - 1):
            seen = store.collection
            try:
                return read(store, *args, **kwargs)
            except Exception as exc:
                if not _raced(exc):
                    raise
                log.info("%s raced a write (%s); reading again", read.__qualname__, exc)
            store.catch_up(seen)
        try:
            return read(store, *args, **kwargs)
        except Exception as exc:
            if not _raced(exc):
                raise
            raise StoreUnavailableError(
                f"vector store read failed {READ_TRIES} times, racing writes: {exc}"
            ) from exc

    return again


def _raced(exc: Exception) -> bool:
    """Whether a read failed because it met a write half-applied."""
    from chromadb.errors import InternalError

    return isinstance(exc, InternalError | TornReadError)


def open_client(settings: Settings) -> ClientAPI:
    """A Chroma client with telemetry off: embedded under the data dir, or a Chroma server (http).

    A server that is not up yet is waited for (RAG_STORE__CONNECT_WAIT_S), so an API pod started
    before Chroma becomes ready instead of crash-looping.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    s = settings.store
    if s.mode == "embedded":
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(settings.chroma_dir), settings=chroma, tenant=s.tenant, database=s.database
        )
    deadline = time.monotonic() + s.connect_wait_s
    while True:
        try:
            client = chromadb.HttpClient(
                host=s.host, port=s.port, ssl=s.ssl, headers=s.headers or None, settings=chroma,
                tenant=s.tenant, database=s.database,
            )  # fmt: skip
            _bound_calls(client, s.timeout_s)
            return client
        except (ValueError, httpx.TransportError) as exc:  # chromadb says ValueError when down
            if time.monotonic() >= deadline:
                raise StoreUnavailableError(
                    f"Chroma server {s.host}:{s.port} not reachable (RAG_STORE__HOST, "
                    f"RAG_STORE__PORT): {exc}"
                ) from exc
            log.warning("waiting for the Chroma server at %s:%d: %s", s.host, s.port, exc)
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def _bound_calls(client: ClientAPI, timeout_s: float) -> None:
    """chromadb's HTTP client waits forever (timeout=None) and offers no setting for it; bound
    each call on its httpx session, so a hung server turns into a 503 instead of a hung request."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        raise StoreUnavailableError(
            "cannot bound calls to the Chroma server: chromadb's HTTP client changed shape"
        )
    session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))


def reopen_embedded(settings: Settings) -> Callable[[], ClientAPI] | None:
    """For an embedded store, how to get a client that sees other processes' writes.

    An embedded Chroma client keeps its vector index in memory: rows another process (rag-ingest)
    wrote or deleted are missed by its queries until the store is opened afresh. A Chroma server
    has one index, so http mode needs nothing.
    """
    if settings.store.mode != "embedded":
        return None

    def reopen() -> ClientAPI:
        from chromadb.api.shared_system_client import SharedSystemClient

        # Chroma shares one system per path within a process; drop it so the next client loads
        # the index from disk. Clients already handed out keep working on their own system.
        SharedSystemClient.clear_system_cache()
        return open_client(settings)

    return reopen
