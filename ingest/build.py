"""Assemble the ingestion pipeline from settings, with the same embedder and store the server uses."""

from __future__ import annotations

from ingest.chunking import Chunker
from ingest.pipeline import Pipeline, store_failure
from rag_core.embedding import Embedder, load_embedder
from rag_core.errors import StoreWriteError
from rag_core.settings import Settings
from rag_core.store import ChunkStore, open_client


def build_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    from chromadb.errors import ChromaError

    embedder = embedder or load_embedder(settings.embedder, settings.models_home)
    try:
        store = ChunkStore(open_client(settings), settings.collection, embedder.identity)
    except ChromaError as exc:  # e.g. a full disk: SQLite cannot even open the store
        where = settings.chroma_dir
        raise StoreWriteError(
            f"cannot open the store {where}: {store_failure(exc, where)}; nothing was written: "
            "re-run rag-ingest when that is fixed"
        ) from exc
    return pipeline_for(settings, store, embedder)


def pipeline_for(settings: Settings, store: ChunkStore, embedder: Embedder) -> Pipeline:
    """A pipeline over an open store: the CLI and the server's upload route both come here."""
    chunk_size = min(settings.ingest.chunk_size, embedder.max_tokens - 2)  # [CLS] and [SEP]
    chunker = Chunker(embedder.tokenize, chunk_size, settings.ingest.chunk_overlap)
    return Pipeline(
        store,
        embedder,
        chunker,
        max_file_bytes=int(settings.ingest.max_file_mb * 1024 * 1024),
        batch_chunks=settings.ingest.batch_chunks,
        data_dir=settings.chroma_dir,
        min_free_bytes=int(settings.ingest.min_free_mb * 1024 * 1024),
    )
