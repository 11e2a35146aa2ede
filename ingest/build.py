"""Assemble the ingestion pipeline from settings, with the same embedder and store the server uses."""

from __future__ import annotations

from ingest.chunking import Chunker
from ingest.pipeline import Pipeline
from rag_server.embedding import Embedder, load_embedder
from rag_server.settings import Settings
from rag_server.store import ChunkStore, open_client


def build_pipeline(settings: Settings, embedder: Embedder | None = None) -> Pipeline:
    embedder = embedder or load_embedder(settings.embedder, settings.models_dir)
    store = ChunkStore(open_client(settings), settings.collection, embedder.identity)
    chunk_size = min(settings.ingest.chunk_size, embedder.max_tokens - 2)  # [CLS] and [SEP]
    chunker = Chunker(embedder.tokenize, chunk_size, settings.ingest.chunk_overlap)
    return Pipeline(
        store,
        embedder,
        chunker,
        max_file_bytes=int(settings.ingest.max_file_mb * 1024 * 1024),
        batch_chunks=settings.ingest.batch_chunks,
    )
