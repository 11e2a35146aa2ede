"""Uploaded documents' original files, kept in the vector store beside their chunks.

Why in the store: it is the one place every API replica shares. A file kept on the disk of the
pod that took the upload answered 404 on every other replica, and was lost when that pod
restarted. Each file is kept under its document id and content hash (the sha256 every chunk of
its write carries, so a reader finds the file of exactly the version it shows), base64 in parts
of at most `PART_BYTES`, in a companion collection `<collection>--files` that only this module
reads and writes. A read checks the hash: a file with a part missing is never served.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_core.chroma_client import reachable
from rag_core.records import content_hash as file_hash
from rag_core.records import version
from rag_core.settings import FILES_SUFFIX

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag_core.store import ChunkStore

PART_BYTES = 1 << 20  # raw bytes per record: a 20 MB upload is 20 records of 1.4 MB text
_PARTS_PER_WRITE = 8  # records per upsert: one request stays well under a server's body limit


def files_collection(collection: str) -> str:
    return collection + FILES_SUFFIX


def is_files_collection(name: str) -> bool:
    return name.endswith(FILES_SUFFIX)


@dataclass(frozen=True)
class OriginalFile:
    name: str  # the file name it was uploaded under (the document id without "uploads/")
    data: bytes


class OriginalFiles:
    """The original files of one collection's uploaded documents.

    It asks `store` for its client at each use rather than holding one: an embedded store's
    client is replaced when it reopens to see other processes' writes (ChunkStore.catch_up)."""

    def __init__(self, store: ChunkStore) -> None:
        self._store = store
        self.name = files_collection(store.name)

    def _files(self) -> Collection:
        return self._store.client.get_or_create_collection(self.name, embedding_function=None)

    def _existing(self) -> Collection | None:
        """The collection when it exists: a read never creates it."""
        from chromadb.errors import NotFoundError

        try:
            return self._store.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            return None

    @staticmethod
    def _records(
        files: Collection, document_id: str, content_hash: str | None = None, texts: bool = False
    ) -> dict[str, Any]:
        where: dict[str, Any] = {"document_id": document_id}
        if content_hash is not None:
            where = {"$and": [where, {"content_hash": content_hash}]}
        include: Any = ["metadatas", "documents"] if texts else ["metadatas"]
        return dict(files.get(where=where, include=include))  # type: ignore[arg-type]

    @reachable
    def keep(self, document_id: str, name: str, data: bytes, ingested_at: str) -> None:
        """Keep `data` as the original of the version of `document_id` written at `ingested_at`,
        then drop the files of older versions. Files of newer versions stay: two replicas that
        raced to upload one name each keep their own file, and the reader asks for the version
        that the chunks show (rag_core.records: the newest write wins)."""
        content_hash = file_hash(data)
        parts = [data[lo : lo + PART_BYTES] for lo in range(0, len(data), PART_BYTES)] or [b""]
        ids = [f"{document_id}#{content_hash}#{i}" for i in range(len(parts))]
        meta: dict[str, str | int] = {
            "document_id": document_id,
            "content_hash": content_hash,
            "ingested_at": ingested_at,
            "name": name,
            "parts": len(parts),
        }
        files = self._files()
        for lo in range(0, len(parts), _PARTS_PER_WRITE):
            batch = range(lo, min(lo + _PARTS_PER_WRITE, len(parts)))
            files.upsert(
                ids=[ids[i] for i in batch],
                # Chroma wants a vector per record; these are never queried by similarity.
                embeddings=np.ones((len(batch), 1), dtype=np.float32),
                documents=[base64.b64encode(parts[i]).decode("ascii") for i in batch],
                metadatas=[{**meta, "part": i} for i in batch],
            )
        mine = version(meta)
        got = self._records(files, document_id)
        older = [
            rid
            for rid, stored in zip(got["ids"], got["metadatas"] or [], strict=True)
            if stored is not None and version(stored) < mine
        ]
        self._delete(files, older)

    @reachable
    def has(self, document_id: str, content_hash: str) -> bool:
        """Whether every part of that version's file is kept (cheap: metadata only)."""
        files = self._existing()
        if files is None:
            return False
        got = self._records(files, document_id, content_hash)
        metas = [m for m in got["metadatas"] or [] if m is not None]
        return bool(metas) and len(metas) == int(metas[0]["parts"])

    @reachable
    def read(self, document_id: str, content_hash: str) -> OriginalFile | None:
        """The file of that version of the document, whole and matching its hash, or None."""
        files = self._existing()
        if files is None:
            return None
        got = self._records(files, document_id, content_hash, texts=True)
        records = sorted(
            (
                (int(m["part"]), m, text)
                for m, text in zip(got["metadatas"] or [], got["documents"] or [], strict=True)
                if m is not None and text is not None
            ),
            key=lambda record: record[0],
        )
        if not records or [r[0] for r in records] != list(range(int(records[0][1]["parts"]))):
            return None
        data = b"".join(base64.b64decode(text) for _, _, text in records)
        if file_hash(data) != content_hash:
            return None
        return OriginalFile(str(records[0][1]["name"]), data)

    @reachable
    def forget(self, document_id: str) -> None:
        """Drop every kept file of the document (it was deleted)."""
        files = self._existing()
        if files is not None:
            self._delete(files, self._records(files, document_id)["ids"])

    @staticmethod
    def _delete(files: Collection, ids: Sequence[str]) -> None:
        if ids:
            files.delete(ids=list(ids))
