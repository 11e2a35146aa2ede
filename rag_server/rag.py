"""build_rag(settings): the only place models and clients are loaded, once, at startup."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from rag_core.embedding import Embedder, load_embedder
from rag_core.errors import RagError
from rag_core.settings import Settings
from rag_core.store import ChunkStore, open_client
from rag_server.answerability import Answerability
from rag_server.catalog import Catalog
from rag_server.documents import DocumentService
from rag_server.generation import GenerationGate, Generator, LlamaCppGenerator
from rag_server.openai_backend import OpenAIGenerator
from rag_server.service import RagService
from rag_server.spelling import Speller

log = logging.getLogger(__name__)


@dataclass
class Rag:
    """The loaded components, owned by the app's lifespan."""

    settings: Settings
    embedder: Embedder
    catalog: Catalog
    generator: Generator
    service: RagService
    documents: DocumentService

    @property
    def store(self) -> ChunkStore:
        """The default collection's store."""
        return self.catalog.get().store

    def readiness(self) -> dict[str, str]:
        """Raises RagError naming the failing dependency; returns the checks that passed."""
        self.store.check()  # heartbeat, and the collection still belongs to our embedder
        self.generator.check()  # in-process: loaded; remote: the endpoint answers
        return {
            "store": f"ok ({self.settings.store.mode})",
            "collection": self.store.name,
            "embedder": self.embedder.identity.describe(),
            "generator": self.generator.name,
            "answer_scorer": self.service.scorer.identity if self.service.scorer else "off",
        }


def load_scorer(settings: Settings, embedder: Embedder) -> Answerability | None:
    """The answer model and its combiner, when the settings choose it (the default)."""
    if settings.grounding.scorer != "answer_model":
        return None
    return Answerability.load(embedder, settings.grounding.scorer_path)


def load_speller(settings: Settings) -> Speller | None:
    """The English dictionary, when questions are read in English (the default embedder)."""
    wanted = settings.grounding.correct_spelling and settings.embedder.english_only
    return Speller.load() if wanted else None


def assemble(
    settings: Settings,
    embedder: Embedder,
    generator: Generator,
    scorer: Answerability | None = None,
) -> Rag:
    """Wire already-loaded models into a Rag (tests pass a scripted generator here). The answer
    scorer is loaded here when the settings want one and none is passed."""
    catalog = Catalog(settings, open_client(settings), embedder)
    catalog.get(create=True)  # the default collection, with its BM25 index built now
    gate = GenerationGate(settings.generator.queue_depth)
    if scorer is None:
        scorer = load_scorer(settings, embedder)
    elif settings.grounding.scorer != "answer_model":
        scorer = None
    service = RagService(
        settings, embedder, catalog, generator, gate, scorer, load_speller(settings)
    )
    documents = DocumentService(settings, catalog)
    return Rag(settings, embedder, catalog, generator, service, documents)


def load_generator(settings: Settings) -> Generator:
    """The configured backend: the in-process GGUF, or an OpenAI-compatible server."""
    if settings.generator.backend == "openai":
        return OpenAIGenerator.connect(settings.generator)
    return LlamaCppGenerator.load(settings.generator, settings.models_home)


def build_rag(settings: Settings) -> Rag:
    began = time.perf_counter()
    embedder = load_embedder(settings.embedder, settings.models_home)
    generator = load_generator(settings)
    scorer = load_scorer(settings, embedder)
    rag = assemble(settings, embedder, generator, scorer)
    log.info(
        "loaded in %.1fs: embedder %s, generator %s (%s style), answer scorer %s, "
        "collection '%s' with %d chunks",
        time.perf_counter() - began,
        embedder.identity.describe(),
        generator.name,
        generator.style,
        scorer.identity if scorer is not None else "off (similarity)",
        settings.collection,
        rag.store.count(),
    )
    return rag


__all__ = ["Rag", "RagError", "assemble", "build_rag"]
