"""Documents over HTTP: upload (admin), list and show (filtered by the key's access), delete (admin)."""

from __future__ import annotations

from typing import Annotated

import anyio
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Struct

from rag_core.access import parse_groups
from rag_core.errors import InvalidInputError
from rag_server.api.deps import DEPENDENCIES, CollectionParam, collection_for, readable
from rag_server.api.problems import responses
from rag_server.api.schemas import DocumentList, DocumentOut, UploadOut
from rag_server.api.security import admin_only
from rag_server.audit import Auditor
from rag_server.auth import ApiKey
from rag_server.catalog import DocumentInfo
from rag_server.rag import Rag


class UploadForm(Struct):
    """multipart/form-data: the file, and optionally who may read it and where it goes."""

    file: UploadFile
    groups: str = ""  # comma-separated; empty: public to every key of the collection
    collection: str | None = None


def _out(doc: DocumentInfo) -> DocumentOut:
    return DocumentOut(
        doc.document_id,
        doc.source,
        doc.title,
        list(doc.groups),
        doc.chunks,
        doc.pages,
        doc.ingested_at,
    )


class DocumentsController(Controller):
    path = "/v1/documents"
    tags = ["documents"]
    dependencies = DEPENDENCIES

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        guards=[admin_only],
        responses=responses(403, 404, 409, 422, 503, 507),
    )
    async def upload(
        self,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        rag: Rag,
        key: ApiKey,
        auditor: Auditor,
    ) -> UploadOut:
        """Add or replace one document (PDF, DOCX, HTML, Markdown, reStructuredText or text;
        checked by content). It is ingested through the same pipeline as `rag-ingest`, under the
        id `uploads/<name>`."""
        collection = collection_for(key, data.collection, rag)
        limit = int(rag.settings.limits.max_upload_mb * 1024 * 1024)
        with auditor.record("upload", key.id, collection) as entry:
            content = await data.file.read(limit + 1)
            try:
                groups = parse_groups(data.groups)
            except ValueError as exc:
                raise InvalidInputError(f"groups: {exc}") from None
            done = await anyio.to_thread.run_sync(
                rag.documents.upload, data.file.filename or "", content, collection, groups
            )
            entry.documents = [done.document.document_id]
            entry.status = done.status
        return UploadOut(collection, done.status, _out(done.document))

    @get("/", responses=responses(403, 404, 409, 503))
    async def list_documents(
        self,
        rag: Rag,
        key: ApiKey,
        collection: CollectionParam = None,
        offset: Annotated[int, Parameter(ge=0)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        source_prefix: Annotated[str | None, Parameter(max_length=1024)] = None,
        contains: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> DocumentList:
        """The documents this key may read, by id, a page at a time; `contains` keeps those whose
        title or name contains the text (any case)."""
        name = collection_for(key, collection, rag)
        corpus = await rag.service.corpus(name)
        docs = await anyio.to_thread.run_sync(corpus.documents, key.access)
        if source_prefix:
            docs = [d for d in docs if d.source.startswith(source_prefix)]
        if contains:
            needle = contains.casefold()
            docs = [
                d for d in docs if needle in d.title.casefold() or needle in d.source.casefold()
            ]
        page = docs[offset : offset + limit]
        return DocumentList([_out(d) for d in page], len(docs), offset, limit)

    @get("/{document_id:path}", responses=responses(403, 404, 409, 503))
    async def show(
        self, document_id: str, rag: Rag, key: ApiKey, collection: CollectionParam = None
    ) -> DocumentOut:
        """One document's record (not its text: search and ask return passages)."""
        return _out((await readable(rag, key, collection, document_id)).document)

    @delete(
        "/{document_id:path}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[admin_only],
        responses=responses(403, 404, 409, 503, 507),
    )
    async def remove(
        self,
        document_id: str,
        rag: Rag,
        key: ApiKey,
        auditor: Auditor,
        collection: CollectionParam = None,
    ) -> Response[None]:
        """Remove every chunk of the document from the store (and so from the keyword index)."""
        name = collection_for(key, collection, rag)
        doc_id = document_id.lstrip("/")
        with auditor.record("delete", key.id, name) as entry:
            entry.documents = [doc_id]
            await anyio.to_thread.run_sync(rag.documents.delete, doc_id, name, key.access)
        return Response(None, status_code=HTTP_204_NO_CONTENT)
