"""The web page for people who ask: one server-rendered page, a small script and a stylesheet,
all shipped in this package, calling the REST API with the key the person signs in with."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from rag_server.web.api import WebApiController
from rag_server.web.page import PageController, static_files


def web_handlers() -> list[ControllerRouterHandler]:
    """Route handlers to register on the app: the page, its assets, and the API it adds."""
    return [PageController, static_files(), WebApiController]
