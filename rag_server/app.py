"""create_app(settings=None, rag=None) -> Litestar: the seam tests and the CLI use."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from rag_server import __version__
from rag_server.api.controllers import HealthController, QueryController
from rag_server.api.problems import EXCEPTION_HANDLERS
from rag_server.rag import Rag, build_rag
from rag_server.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, rag: Rag | None = None) -> Litestar:
    """Models load in the lifespan (once, in a thread) unless a ready Rag is passed in."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if app.state.get("rag") is None:
            app.state.rag = await anyio.to_thread.run_sync(build_rag, settings)
        yield

    return Litestar(
        route_handlers=[HealthController, QueryController],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"rag": rag, "settings": settings}),
        openapi_config=OpenAPIConfig(title="rag-server", version=__version__),
    )
