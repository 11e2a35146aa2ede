"""build_rag(settings): the only place models and clients are loaded, once, at startup."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from rag_server.embedding import Embedder, load_embedder
from rag_server.errors import RagError
from rag_server.generation import GenerationGate, Generator, LlamaCppGenerator
from rag_server.retrieval import HybridRetriever, KeywordIndex
from rag_server.service import RagService
from rag_server.settings import Settings
from rag_server.store import ChunkStore, open_client

log = logging.getLogger(__name__)


@dataclass
class Rag:
    """The loaded components, owned by the app's lifespan."""

    settings: Settings
    embedder: Embedder
    store: ChunkStore
    generator: Generator
    service: RagService

    def readiness(self) -> dict[str, str]:
        """Raises RagError naming the failing dependency; returns the checks that passed."""
        self.store.check()
        return {
            "store": "ok",
            "collection": self.store.name,
            "embedder": self.embedder.identity.describe(),
            "generator": self.generator.name,
        }


def assemble(settings: Settings, embedder: Embedder, generator: Generator) -> Rag:
    """Wire already-loaded models into a Rag (tests pass a scripted generator here)."""
    store = ChunkStore(open_client(settings), settings.collection, embedder.identity)
    keyword = KeywordIndex(store)
    keyword.refresh()  # build the BM25 index now, not on the first request
    r = settings.retrieval
    retriever = HybridRetriever(store, embedder, keyword, r.fusion, r.candidates, r.dense_weight)
    gate = GenerationGate(settings.generator.queue_depth)
    service = RagService(settings, embedder, retriever, generator, gate)
    return Rag(settings, embedder, store, generator, service)


def build_rag(settings: Settings) -> Rag:
    began = time.perf_counter()
    embedder = load_embedder(settings.embedder, settings.models_dir)
    generator = LlamaCppGenerator.load(settings.generator, settings.models_dir)
    rag = assemble(settings, embedder, generator)
    log.info(
        "loaded in %.1fs: embedder %s, generator %s (%s style), collection '%s' with %d chunks",
        time.perf_counter() - began,
        embedder.identity.describe(),
        generator.name,
        generator.style,
        settings.collection,
        rag.store.count(),
    )
    return rag


__all__ = ["Rag", "RagError", "assemble", "build_rag"]
