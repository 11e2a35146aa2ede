"""Liveness, readiness and metrics: the routes probes and Prometheus call."""

from __future__ import annotations

import anyio
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK

from rag_core.errors import RagError
from rag_server.api.deps import NotReadyError, provide_rag
from rag_server.api.problems import responses
from rag_server.api.schemas import Health
from rag_server.auth import KeyRing


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", sync_to_thread=False, responses=responses())
    def healthz(self) -> Health:
        """Liveness: the process is up. Checks nothing else, so a slow dependency never restarts it."""
        return Health("ok")

    @get("/readyz", status_code=HTTP_200_OK, responses=responses(503))
    async def readyz(self, state: State) -> Response[Health]:
        """Readiness: models loaded, the store reachable, and the collection built by our embedder.
        `api_keys` reports a keys file that could not be read after a change; the last good keys
        still serve, so it does not make the replica unready (every replica would read the same
        file, and taking them all out of service would be an outage)."""
        rag = provide_rag(state)
        try:
            checks = await anyio.to_thread.run_sync(rag.readiness)
        except RagError as exc:  # whichever dependency failed, the detail names it
            raise NotReadyError(exc.detail) from exc
        keyring: KeyRing = state.keyring
        return Response(Health("ready", {**checks, "api_keys": keyring.describe()}))


class MetricsController(Controller):
    tags = ["observability"]

    @get("/metrics", media_type=MediaType.TEXT, responses=responses(), sync_to_thread=False)
    def metrics(self) -> Response[bytes]:
        """Prometheus text format (any valid key): requests, latencies, answers by status, queue,
        tokens per second."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
