"""The page at `/` and its assets under `/static`, served without a key (they hold no data).

How the key is kept, and why: the script keeps it in `sessionStorage` and sends it as
`Authorization: Bearer` on each API call. The API already authenticates exactly that way, so the
page adds no second way in: no session store to share across replicas, no cookie, and therefore
no cross-site request to forge (a browser never attaches the key by itself). The key never goes
into a URL, so it cannot reach access logs or Referer headers; it is gone when the tab closes.
The cost, a script on the page could read it, is met by the Content-Security-Policy below (our
own script only, nothing inline, nothing from another origin) and by showing every piece of
document text with `textContent`, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from rag_server import __version__

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Nothing from another origin, nothing inline. `object-src blob:` only: an original PDF, fetched
# with the key, opens as a blob: tab that inherits this policy, and Chromium's PDF viewer counts
# as an object. The page cannot be framed (clickjacking).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src blob:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


class PageController(Controller):
    include_in_schema = False
    opt = {"exclude_from_auth": True}  # the sign-in page itself needs no key

    @get("/", media_type=MediaType.HTML, sync_to_thread=False)
    def index(self) -> Response[str]:
        """The single page: sign-in, ask, document view and documents."""
        html = _templates.get_template("index.html").render(version=__version__)
        return Response(
            html,
            media_type=MediaType.HTML,
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )


def static_files() -> Router:
    """The script and stylesheet; the version in their URL busts caches on upgrade."""
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={"exclude_from_auth": True},
        cache_control=CacheControlHeader(max_age=3600),
        after_request=_secure,
    )


async def _secure(response: Response) -> Response:  # type: ignore[type-arg]
    response.headers.update(SECURITY_HEADERS)
    return response
