from pathlib import Path

import pytest

from rag_server.errors import ConfigError
from rag_server.settings import load_settings


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAG_DATA_DIR", "RAG_PORT", "RAG_COLLECTION", "RAG_HOST"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.data_dir == Path("./data")
    assert s.port == 8000
    assert s.collection == "default"
    assert s.embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert s.generator.model_path is None
    assert s.ingest.chunk_size < s.embedder.max_tokens
    assert (s.embedder.backend, s.embedder.quantize) == ("onnx", "none")


def test_nested_variables_are_read_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR__N_CTX", "2048")
    monkeypatch.setenv("RAG_GENERATOR__MODEL_PATH", "/models/phi3.gguf")
    s = load_settings()
    assert s.generator.n_ctx == 2048
    assert s.generator.model_path == Path("/models/phi3.gguf")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAG_PORT", "eighty"),
        ("RAG_PORT", "70000"),
        ("RAG_GENERATOR__N_CTX", "10"),
        ("RAG_GENERATOR__PROMPT_STYLE", "poetry"),
        ("RAG_COLLECTION", "a/../b"),
        ("RAG_INGEST__CHUNK_SIZE", "-5"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value)


def test_unknown_nested_keys_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR__N_CTXX", "2048")
    with pytest.raises(ConfigError, match="RAG_GENERATOR__N_CTXX"):
        load_settings()


def test_store_and_generator_backend_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_STORE__MODE", "http")
    monkeypatch.setenv("RAG_STORE__HOST", "rag-chroma")
    monkeypatch.setenv("RAG_STORE__PORT", "8001")
    monkeypatch.setenv("RAG_STORE__HEADERS", '{"x-chroma-token": "t"}')
    monkeypatch.setenv("RAG_GENERATOR__BACKEND", "openai")
    monkeypatch.setenv("RAG_GENERATOR__BASE_URL", "http://llm:8080/v1")
    monkeypatch.setenv("RAG_GENERATOR__MODEL", "qwen2.5-3b-instruct")
    monkeypatch.setenv("RAG_SHUTDOWN_GRACE_S", "12")
    s = load_settings()
    assert (s.store.mode, s.store.host, s.store.port) == ("http", "rag-chroma", 8001)
    assert s.store.headers == {"x-chroma-token": "t"}
    assert (s.generator.backend, s.generator.model) == ("openai", "qwen2.5-3b-instruct")
    assert s.shutdown_grace_s == 12


def test_defaults_are_embedded_store_and_in_process_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAG_STORE__MODE", "RAG_GENERATOR__BACKEND"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert (s.store.mode, s.generator.backend) == ("embedded", "llama_cpp")


def test_the_openai_backend_needs_a_url_and_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR__BACKEND", "openai")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "RAG_GENERATOR__BASE_URL" in str(info.value)
    assert "RAG_GENERATOR__MODEL" in str(info.value)
    monkeypatch.setenv("RAG_GENERATOR__BASE_URL", "llm:8080")  # no scheme
    monkeypatch.setenv("RAG_GENERATOR__MODEL", "m")
    with pytest.raises(ConfigError, match="RAG_GENERATOR__BASE_URL"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("RAG_STORE__MODE", "cloud"), ("RAG_STORE__PORT", "0"), ("RAG_GENERATOR__BACKEND", "gpt")],
)
def test_bad_store_and_backend_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
