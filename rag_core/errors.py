"""One exception hierarchy for the whole service; the HTTP layer maps it to problem details."""

from __future__ import annotations


class RagError(Exception):
    """Base class: every error we raise on purpose. `status` is the HTTP status it maps to."""

    status: int = 500
    title: str = "Internal error"
    retry_after: int | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(RagError):
    title = "Invalid configuration"


class EmbedderMismatchError(RagError):
    """The collection was built by another embedding model; mixing vectors would give nonsense."""

    status = 409
    title = "Embedder does not match the collection"


class CollectionNotFoundError(RagError):
    status = 404
    title = "Collection not found"


class NotFoundError(RagError):
    status = 404
    title = "Not found"


class InvalidInputError(RagError):
    """A request that is well-formed but unacceptable (e.g. an upload of an unsupported type)."""

    status = 422
    title = "Unprocessable content"


class StoreUnavailableError(RagError):
    status = 503
    title = "Vector store unavailable"
    retry_after = 5


class StoreLockedError(RagError):
    """An embedded store directory already has a writer; two would corrupt or race each other."""

    status = 409
    title = "Vector store is being written by another process"
    retry_after = 30


class GeneratorUnavailableError(RagError):
    """The OpenAI-compatible generator endpoint did not answer (or answered with an error)."""

    status = 503
    title = "Generator unavailable"
    retry_after = 5


class StoreWriteError(RagError):
    """A write to the vector store failed part-way (e.g. the disk is full)."""

    status = 507
    title = "Vector store write failed"


class ModelLoadError(RagError):
    title = "Model could not be loaded"


class OverloadedError(RagError):
    status = 503
    title = "Generation queue is full"
    retry_after = 2
