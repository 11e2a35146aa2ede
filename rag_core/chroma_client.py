"""Getting a Chroma client that behaves: telemetry off, a server waited for at start-up, every
HTTP call bounded in time, an embedded store reopened to see other processes' writes, and an
unreachable server reported as StoreUnavailableError (a 503) rather than a transport error."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import httpx

from rag_core.errors import StoreUnavailableError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from rag_core.settings import Settings

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def reachable(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Chroma server that cannot be reached is a 503 (StoreUnavailableError), not a 500."""

    @functools.wraps(call)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return call(*args, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"vector store not reachable: {exc}") from exc

    return wrapper


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
