"""What the web page needs beyond the REST API it calls: who the key is, and a document's text and
original file, so a citation can be checked in its context (offsets match `start`/`end`)."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

import anyio
import msgspec
from litestar import Controller, Response, get

from rag_core.errors import NotFoundError
from rag_core.store import Chunk
from rag_server.api.deps import DEPENDENCIES, CollectionParam, readable
from rag_server.api.problems import responses
from rag_server.auth import ApiKey
from rag_server.rag import Rag


class Me(msgspec.Struct):
    """The caller's key as the page needs it: which controls to show, which collections to offer."""

    key_id: str
    role: str
    collections: list[str]
    default_collection: str


class PageStart(msgspec.Struct):
    page: int
    start: int


class DocumentText(msgspec.Struct):
    """The document's extracted text: `text[start:end]` is exactly a citation's `quote`."""

    document_id: str
    title: str
    source: str
    text: str
    pages: list[PageStart]  # where each page begins in `text`
    has_file: bool  # the original file is kept (uploads) and served by /v1/document-file


def attachment(name: str) -> str:
    """Content-Disposition for a download. Header values are Latin-1, so a name outside ASCII
    goes in `filename*` (RFC 6266, UTF-8 percent-encoded), with an ASCII stand-in for old
    clients; a safe_name() never holds quotes, but one would not end the value early."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    plain = 'attachment; filename="{}"'.format(ascii_name.replace('"', "_"))
    return plain if ascii_name == name else f"{plain}; filename*=UTF-8''{quote(name)}"


def assemble_text(chunks: list[Chunk]) -> tuple[str, list[PageStart]]:
    """Chunks are slices `text[start:end]` of one document and may overlap; laying them at their
    offsets rebuilds the text with offsets intact. Gaps (text no chunk kept, such as the break
    between two pages) become whitespace of the same length."""
    parts: list[str] = []
    pages: list[PageStart] = []
    cursor = 0
    for chunk in sorted(chunks, key=lambda c: (c.start, c.end)):
        if chunk.start > cursor:
            parts.append(" " * (chunk.start - cursor - 1) + "\n")
            cursor = chunk.start
        if chunk.page is not None and (not pages or pages[-1].page != chunk.page):
            pages.append(PageStart(chunk.page, chunk.start))
        if chunk.end > cursor:
            parts.append(chunk.text[cursor - chunk.start :])
            cursor = chunk.end
    return "".join(parts), pages


class WebApiController(Controller):
    path = "/v1"
    tags = ["web page"]
    dependencies = DEPENDENCIES

    @get("/me", responses=responses(503))
    async def me(self, rag: Rag, key: ApiKey) -> Me:
        """The calling key: id, role and the collections it may use (those that exist)."""
        names = await rag.service.collections()  # as /v1/models lists them
        default = rag.settings.collection
        usable = [n for n in sorted({*names, default}) if key.may_use(n)]
        return Me(key.id, key.role, usable, default)

    @get("/document-text/{document_id:path}", responses=responses(403, 404, 409, 503))
    async def text(
        self, document_id: str, rag: Rag, key: ApiKey, collection: CollectionParam = None
    ) -> DocumentText:
        """A document's extracted text as the citations' offsets count it, with page starts."""
        found = await readable(rag, key, collection, document_id)
        text, pages = assemble_text(found.chunks)
        first = found.chunks[0]
        has_file = await anyio.to_thread.run_sync(
            rag.documents.has_original, found.corpus, found.document_id, first.content_hash
        )
        return DocumentText(found.document_id, first.title, first.source, text, pages, has_file)

    @get(
        "/document-file/{document_id:path}",
        media_type="application/octet-stream",  # the file's own type, in truth
        responses=responses(403, 404, 409, 503),
    )
    async def file(
        self, document_id: str, rag: Rag, key: ApiKey, collection: CollectionParam = None
    ) -> Response[bytes]:
        """The original file of an uploaded document, as an attachment (documents ingested with
        `rag-ingest` are read from a folder the server does not keep: 404)."""
        found = await readable(rag, key, collection, document_id)
        kept = await anyio.to_thread.run_sync(
            rag.documents.original, found.corpus, found.document_id, found.chunks[0].content_hash
        )
        if kept is None:
            raise NotFoundError(
                f"the original file of '{found.document_id}' is not kept on this server"
            )
        media = mimetypes.guess_type(kept.name)[0] or "application/octet-stream"
        # An attachment in a sandbox: an uploaded HTML file never runs as our origin.
        headers = {
            "Content-Disposition": attachment(kept.name),
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(kept.data, media_type=media, headers=headers)
