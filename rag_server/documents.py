"""Documents over HTTP: uploads go through the same pipeline as `rag-ingest`, and their original
files are kept in the store beside their chunks (rag_core.originals), so every replica serves
them; deletes remove both. Blocking work runs in the caller's worker thread. One writer at a time:
per process, and for an embedded store across processes too (the writer lock `rag-ingest` takes;
409 while held)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.build import pipeline_for
from ingest.loaders import loader_for
from ingest.pipeline import UPLOAD_PREFIX, SourceFile, document_groups
from rag_core.access import Access
from rag_core.errors import InvalidInputError, NotFoundError
from rag_core.originals import OriginalFile
from rag_core.records import content_hash as file_hash
from rag_core.settings import Settings
from rag_core.writelock import store_writer
from rag_server.catalog import Catalog, Corpus, DocumentInfo

_UNSAFE = re.compile(r"[^\w.\- ]+")


def safe_name(filename: str) -> str:
    """A file name that cannot climb out of its folder: last path part only, NFC, no control or
    shell-special characters, no leading dots, at most 120 characters."""
    base = re.split(r"[/\\]", filename)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise InvalidInputError(f"file name {filename!r} has no usable name and extension")
    stem = stem[: 120 - len(suffix) - 1]
    return f"{stem}.{suffix.lower()}"


# What an upload did to the collection (an identical file again: "unchanged").
UploadStatus = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True)
class Uploaded:
    document: DocumentInfo
    status: UploadStatus


class DocumentService:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog

    def folder(self, collection: str) -> Path:
        """This process's scratch folder for a collection's uploads: files being ingested, and
        the originals that releases before 2026-12-06 kept here instead of in the store."""
        return self.settings.uploads_dir / collection

    def original(self, corpus: Corpus, document_id: str, content_hash: str) -> OriginalFile | None:
        """The uploaded file of the version of the document whose chunks carry `content_hash`;
        None for documents ingested with `rag-ingest` (read from a folder the server does not
        keep), or when the file is not whole."""
        if not document_id.startswith(UPLOAD_PREFIX):
            return None
        kept = corpus.files.read(document_id, content_hash)
        return kept if kept is not None else self._from_folder(corpus, document_id, content_hash)

    def has_original(self, corpus: Corpus, document_id: str, content_hash: str) -> bool:
        if not document_id.startswith(UPLOAD_PREFIX):
            return False
        return corpus.files.has(document_id, content_hash) or (
            self._from_folder(corpus, document_id, content_hash) is not None
        )

    def _kept_here(self, collection: str, document_id: str) -> Path:
        return self.folder(collection) / document_id.removeprefix(UPLOAD_PREFIX)

    def _from_folder(
        self, corpus: Corpus, document_id: str, content_hash: str
    ) -> OriginalFile | None:
        """An original that an earlier release kept on this process's disk, if it is the
        version the chunks show; uploading the document again moves it into the store."""
        path = self._kept_here(corpus.name, document_id)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return OriginalFile(path.name, data) if file_hash(data) == content_hash else None

    def upload(
        self, filename: str, data: bytes, collection: str | None, groups: frozenset[str]
    ) -> Uploaded:
        """Validate, ingest, then keep the file in the store (the web page's "original file",
        on every replica). Nothing is kept when the content is refused."""
        limit = int(self.settings.limits.max_upload_mb * 1024 * 1024)
        if len(data) > limit:
            raise InvalidInputError(f"file too large ({len(data)} bytes; limit {limit})")
        name = safe_name(filename)
        if loader_for(Path(name)) is None:
            raise InvalidInputError(
                f"unsupported file type '{Path(name).suffix}': PDF, DOCX, HTML, Markdown,"
                " reStructuredText or text"
            )
        try:
            stamp = document_groups(groups)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        corpus = self.catalog.get(collection, create=True)
        folder = self.folder(corpus.name)
        folder.mkdir(parents=True, exist_ok=True)
        target = self._kept_here(corpus.name, UPLOAD_PREFIX + name)
        staging = folder / ".staging"  # hidden: never picked up by a `rag-ingest` of the folder
        staging.mkdir(exist_ok=True)
        staged = staging / name  # same name: loaders read type and fallback title from it
        with self.catalog.write_lock, store_writer(self.settings, "rag-server upload"):
            staged.write_bytes(data)
            try:
                pipeline = pipeline_for(self.settings, corpus.store, self.catalog.embedder)
                source = SourceFile(staged, UPLOAD_PREFIX + name, stamp)
                report = pipeline.ingest([source])
                if report.failed:
                    raise InvalidInputError(f"{name}: {report.failed[0].error}")
            finally:
                staged.unlink(missing_ok=True)
            # Read back under the lock, from the store: once it is released, another upload of
            # this name may replace the document (its new chunks in, then these out), which a
            # keyword snapshot read afterwards can catch half-done or not yet show.
            chunks = corpus.store.document_chunks(UPLOAD_PREFIX + name)
            if chunks and chunks[0].content_hash == file_hash(data):
                # Ours is the version the store shows; a replica whose upload of this name
                # won instead keeps its own file.
                corpus.files.keep(UPLOAD_PREFIX + name, name, data, chunks[0].ingested_at)
            target.unlink(missing_ok=True)  # an earlier release's copy of the file, now stale
        if not chunks:  # pragma: no cover - another process (a Chroma server takes no lock)
            raise NotFoundError(f"'{name}' was removed while it was being ingested")
        document = DocumentInfo.of(chunks)
        status: UploadStatus = (
            "added" if report.added else "updated" if report.updated else "unchanged"
        )
        corpus.keyword.refresh()  # searches and listings show the write once this returns
        return Uploaded(document, status)

    def delete(self, document_id: str, collection: str | None, access: Access) -> None:
        """Remove every chunk of the document (and its uploaded file). A document the caller may
        not read is reported as missing, like one that does not exist."""
        corpus = self.catalog.get(collection)
        corpus.readable(document_id, access)  # NotFoundError: missing, or not the caller's
        with self.catalog.write_lock, store_writer(self.settings, "rag-server delete"):
            corpus.store.delete_document(document_id)
            corpus.files.forget(document_id)
        corpus.keyword.refresh()  # gone from search and listings once this returns
        if document_id.startswith(UPLOAD_PREFIX):
            self._kept_here(corpus.name, document_id).unlink(missing_ok=True)
