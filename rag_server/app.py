"""create_app(settings=None, rag=None) -> Litestar: the seam tests and the CLI use."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Schema,
    SecurityScheme,
)

from rag_core.settings import Settings, load_settings
from rag_server import __version__
from rag_server.api.controllers import QueryController
from rag_server.api.documents import DocumentsController
from rag_server.api.health import HealthController, MetricsController
from rag_server.api.observability import http_metrics
from rag_server.api.openai import OpenAIController
from rag_server.api.problems import EXCEPTION_HANDLERS
from rag_server.api.security import PUBLIC_PATHS, ApiKeyMiddleware, FailedAuthLimiter, rate_limit
from rag_server.audit import Auditor
from rag_server.auth import KeyRing
from rag_server.rag import Rag, build_rag
from rag_server.web import web_handlers

log = logging.getLogger(__name__)


_EXTRA_MEDIA = {
    ("/v1/ask", "post"): (
        "text/event-stream",
        "events `sources` (passages), `token` ({text}), `final` (AskResponse) or `error` "
        "(problem details)",
    ),
    ("/v1/chat/completions", "post"): (
        "text/event-stream",
        "chat.completion.chunk objects, the last one with the `rag` extra, then [DONE]",
    ),
}


def _declare_media_types(
    app: Litestar, replace_json: frozenset[str] = frozenset({"/metrics"})
) -> None:
    """Declare what Litestar cannot infer: streams beside JSON, and /metrics as plain text
    (it declares one media type per response, JSON unless told)."""
    paths = app.openapi_schema.paths or {}
    for (path, method), (media, description) in _EXTRA_MEDIA.items():
        operation = getattr(paths[path], method) if path in paths else None
        ok = operation.responses.get("200") if operation and operation.responses else None
        if isinstance(ok, OpenAPIResponse):
            ok.content = ok.content or {}
            # Events differ in shape (sources, token, final, error): any JSON, described in words.
            ok.content[media] = OpenAPIMediaType(schema=Schema(description=description))


def create_app(settings: Settings | None = None, rag: Rag | None = None) -> Litestar:
    """Models load in the lifespan (once, in a thread) unless a ready Rag is passed in. The keys
    file is read now: a malformed one stops the start with its path named."""
    settings = settings or load_settings()
    keys = KeyRing(settings.keys_file)
    if not keys.keys():
        log.warning(
            "no API keys in %s: every request but /healthz and /readyz gets 401; create one with "
            "`rag-server keys add --role admin`",
            settings.keys_file,
        )
    auditor = Auditor(settings.audit)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if app.state.get("rag") is None:
            app.state.rag = await anyio.to_thread.run_sync(build_rag, settings)
        try:
            yield
        finally:
            auditor.close()

    limits = settings.limits
    uploads = Router(
        "/",
        route_handlers=[DocumentsController],
        request_max_body_size=int(limits.max_upload_mb * 1024 * 1024) + 65536,
    )
    app = Litestar(
        route_handlers=[
            HealthController,
            QueryController,
            OpenAIController,
            MetricsController,
            uploads,
            *web_handlers(),  # the page at / and what it needs
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        middleware=[
            http_metrics().middleware,
            DefineMiddleware(
                ApiKeyMiddleware,
                exclude=PUBLIC_PATHS,
                limiter=FailedAuthLimiter(limits.failed_auth_per_minute),
            ),
            rate_limit(limits.requests_per_minute).middleware,
        ],
        request_max_body_size=limits.max_body_kb * 1024,
        logging_config=None,  # logging is configured once, by the CLI (text or JSON)
        state=State({"rag": rag, "settings": settings, "keyring": keys, "auditor": auditor}),
        openapi_config=OpenAPIConfig(
            title="rag-server",
            version=__version__,
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http", scheme="bearer", description="rag_<id>_<secret>"
                    )
                }
            ),
            security=[{"apiKey": []}],
            # The schema only: the stock browser pages load their scripts from public CDNs.
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
    )
    _declare_media_types(app)
    return app
