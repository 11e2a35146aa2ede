import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from rag_core.errors import ConfigError
from rag_core.settings import Settings, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def _variables(model: BaseModel, prefix: str = "RAG_") -> dict[str, object]:
    """Every setting as its environment variable -> its default value."""
    out: dict[str, object] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out |= _variables(value, f"{prefix}{name.upper()}__")
        else:
            out[f"{prefix}{name}".upper()] = value
    return out


def _documented(text: str, value: object) -> bool:
    """The README's `default` cell text against the real default value."""
    if isinstance(value, bool):
        return text == str(value).lower()
    if isinstance(value, (int, float)):
        return float(text) == value
    if isinstance(value, Path):
        return Path(text) == value
    if isinstance(value, dict):
        return json.loads(text) == value
    if value is None:  # derived at run time: the README names what from, e.g. `<data dir>/...`
        return text.startswith("<")
    return text == value


def test_the_readme_configuration_table_is_every_setting_with_its_real_default() -> None:
    """The table users read is the contract: every variable documented, every default in
    backticks equal to the one the code uses (a default in words, e.g. "the packaged model",
    is one the code computes)."""
    defaults = _variables(Settings())  # the fixture's autouse clean environment applies
    rows = re.findall(r"^\| (`RAG_[^|]*) \| ([^|]*) \|", README.read_text(), re.MULTILINE)
    documented: set[str] = set()
    for names_cell, default_cell in rows:
        names = re.findall(r"`(RAG_[A-Z_]+)`", names_cell)
        values = re.findall(r"`([^`]*)`", default_cell)
        documented |= set(names)
        assert set(names) <= set(defaults), f"README documents unknown {names}"
        if values:
            assert len(values) == len(names), f"README row {names}: {values}"
            for name, text in zip(names, values, strict=True):
                assert _documented(text, defaults[name]), (
                    f"{name}: README {text!r}, code {defaults[name]!r}"
                )
    assert set(defaults) - documented == set(), "settings missing from the README table"


def test_the_default_store_port_is_not_the_servers_own() -> None:
    """A Chroma server started beside rag-server on one host must not need the same port."""
    settings = load_settings()
    assert settings.store.port != settings.port


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
