"""The HTTP edge under misuse: filters checked before Chroma sees them, failed authentications
throttled per address, metrics labelled with the status each request really got, a private audit
log, schema pages that need nothing from outside, and a broken keys file that does not stop
service. Real app, real store, real keys file, real /metrics output."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.api.security import FailedAuthLimiter
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer, serve_app

QUESTION = "What is the maximum hotel cost per night?"
ANSWER = "Hotel stays are capped at €165 per night [1]."
Client = TestClient[Litestar]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def corpus_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """The example documents, ingested once for the module (tests here only read them)."""
    root = tmp_path_factory.mktemp("edge")
    settings = load_settings(
        data_dir=root / "data",
        audit={"path": str(root / "audit.jsonl")},
        grounding={"answer_mode": "generate", "gate_threshold": 0.3},
    )
    build_pipeline(settings, embedder).run([EXAMPLES])
    return settings


@pytest.fixture
def edge(corpus_settings: Settings, tmp_path: Path) -> Settings:
    """The shared corpus, with this test's own keys file and audit log."""
    auth = corpus_settings.auth.model_copy(update={"keys_file": tmp_path / "keys.json"})
    audit = corpus_settings.audit.model_copy(update={"path": str(tmp_path / "audit.jsonl")})
    return corpus_settings.model_copy(update={"auth": auth, "audit": audit})


@pytest.fixture
def app_client(edge: Settings, embedder: Embedder) -> Iterator[Client]:
    app = create_app(edge, assemble(edge, embedder, ScriptedGenerator([ANSWER])))
    with TestClient(app=app, raise_server_exceptions=False) as client:
        yield client


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def count(
    before: Samples, after: Samples, name: str, **labels: str
) -> float:  # the increase of every sample of `name` whose labels include `labels`
    def total(found: Samples) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)

    return total(after) - total(before)


# ---- 16.2: filters are checked at the edge ---------------------------------------------------

MANY_KEYS = {f"field{i}": i for i in range(988)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "metadata",
    [
        {"$or": 1},
        {"$and": [{"page": 1}]},
        {"$contains": "x"},
        {"acl_g_hr": True},  # the access stamps are not a filter a caller may set
        MANY_KEYS,  # "Expression tree is too large" in Chroma
        {"page": "x" * 1025},
        {"page": None},
    ],
    ids=["or", "and", "contains", "acl", "988-keys", "long-value", "null"],
)
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask"])
def test_bad_metadata_filters_are_a_400_naming_the_field(
    app_client: Client,
    edge: Settings,
    path: str,
    metadata: dict[str, object],
) -> None:
    text = "hotel cost per night"
    body = {
        "query" if path == "/v1/search" else "question": text,
        "filters": {"metadata": metadata},
    }
    reader = bearer(add_key(edge, "reader", groups=()))
    r = app_client.post(path, json=body, headers=reader)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "filters.metadata" in r.text
    # A good filter on the same route still works.
    good = {**body, "filters": {"metadata": {"page": 1}}}
    assert app_client.post(path, json=good, headers=reader).status_code == 200


@pytest.mark.slow
def test_too_many_document_ids_are_a_400(app_client: Client, edge: Settings) -> None:
    body = {"query": "hotel", "filters": {"document_id": [f"d{i}" for i in range(257)]}}
    r = app_client.post("/v1/search", json=body, headers=bearer(add_key(edge)))
    assert r.status_code == 400 and "filters.document_id" in r.text


# ---- 16.6 + 16.7: failed authentications are throttled and counted as what they were ---------


@pytest.mark.slow
def test_failed_authentications_are_limited_per_address_with_retry_after(
    edge: Settings, embedder: Embedder
) -> None:
    """Over real uvicorn, which takes the client address from X-Forwarded-For sent by a trusted
    proxy (loopback), so two addresses can be told apart."""
    limits = edge.limits.model_copy(update={"failed_auth_per_minute": 5})
    tuned = edge.model_copy(update={"limits": limits})
    app = create_app(tuned, assemble(tuned, embedder, ScriptedGenerator([ANSWER])))
    good = bearer(add_key(tuned))
    wrong = bearer("rag_nobody_" + "x" * 43)
    attacker, bystander = {"X-Forwarded-For": "10.0.0.1"}, {"X-Forwarded-For": "10.0.0.2"}
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        before = samples(http.get("/metrics", headers=good).text)
        codes = [
            http.post("/v1/search", json={"query": "x"}, headers=wrong | attacker).status_code
            for _ in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3
        limited = http.post("/v1/search", json={"query": "x"}, headers=good | attacker)
        assert limited.status_code == 429  # while limited, even a right key is not tried
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 0 < int(limited.headers["retry-after"]) <= 60
        assert "authentication" in limited.json()["detail"]
        assert http.post("/v1/search", json={"query": "x"}, headers=good | bystander).is_success
        assert http.get("/healthz", headers=attacker).status_code == 200  # probes: never limited
        after = samples(http.get("/metrics", headers=good).text)
    search = {"path": "/v1/search", "method": "POST"}
    assert count(before, after, "rag_http_requests_total", status_code="401", **search) == 5
    assert count(before, after, "rag_http_requests_total", status_code="429", **search) == 4
    assert count(before, after, "rag_http_requests_total", status_code="200", **search) == 1


def test_the_failed_authentication_limiter_stays_bounded_under_many_addresses() -> None:
    """A spread-out attack (one failure from each of many addresses) cannot grow it for ever,
    and the address that is limited now stays limited."""
    limiter = FailedAuthLimiter(per_minute=2)
    limiter.MAX_ADDRESSES = 8
    limiter.failed("10.9.9.9")
    limiter.failed("10.9.9.9")
    for i in range(100):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
        assert len(limiter._windows) <= limiter.MAX_ADDRESSES
    assert limiter.retry_after("10.9.9.9") is not None
    assert limiter.retry_after("10.0.0.99") is None  # one failure: may try again
    limiter.failed("10.0.0.99")
    assert limiter.retry_after("10.0.0.99") is not None


# ---- 16.7: metrics say what happened ----------------------------------------------------------


@pytest.mark.slow
def test_metrics_label_requests_with_the_status_they_got(
    app_client: Client, edge: Settings
) -> None:
    admin = bearer(add_key(edge, "admin"))
    before = samples(app_client.get("/metrics", headers=admin).text)
    assert (
        app_client.post(
            "/v1/search", json={"query": "x"}, headers=bearer("rag_x_" + "y" * 43)
        ).status_code
        == 401
    )
    assert app_client.get("/v1/models").status_code == 401  # no key at all
    files = {"file": ("metrics-note.md", b"# Note\n\nThe parking garage closes at 22:00.\n")}
    assert app_client.post("/v1/documents", files=files, headers=admin).status_code == 201
    gone = app_client.delete("/v1/documents/uploads/metrics-note.md", headers=admin)
    assert gone.status_code == 204
    after = samples(app_client.get("/metrics", headers=admin).text)
    requests = "rag_http_requests_total"
    assert count(before, after, requests, path="/v1/search", status_code="401") == 1
    assert count(before, after, requests, path="/v1/search", status_code="200") == 0
    assert count(before, after, requests, path="/v1/models", status_code="401") == 1
    assert count(before, after, requests, method="DELETE", status_code="204") == 1
    assert count(before, after, requests, method="DELETE") == 1
    in_progress = [ls for (n, ls) in after if n == "rag_http_requests_in_progress"]
    assert in_progress and all("status_code" not in dict(ls) for ls in in_progress)
    assert any(dict(ls).get("method") == "DELETE" for ls in in_progress)


@pytest.mark.slow
def test_a_stream_the_client_leaves_is_not_counted_as_a_server_error(
    edge: Settings, embedder: Embedder
) -> None:
    words = " ".join(["Hotel stays are capped at €165 per night."] * 40)
    generator = ScriptedGenerator([words], token_delay_s=0.05)
    app = create_app(edge, assemble(edge, embedder, generator))
    headers = bearer(add_key(edge))
    ask = {"path": "/v1/ask", "method": "POST"}
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        before = samples(http.get("/metrics").text)
        body = {"question": QUESTION, "stream": True}
        with http.stream("POST", "/v1/ask", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: token"):
                    break
        # The request is recorded when the server has finished with it: wait for that.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = samples(http.get("/metrics").text)
            if count(before, after, "rag_http_requests_total", **ask):
                break
            time.sleep(0.05)
    assert count(before, after, "rag_http_requests_total", **ask) == 1
    assert count(before, after, "rag_http_requests_total", status_code="200", **ask) == 1
    assert count(before, after, "rag_http_requests_error_total", **ask) == 0


# ---- 16.7: the audit log is private -----------------------------------------------------------


@pytest.mark.slow
def test_the_audit_log_and_its_new_directory_are_private(
    edge: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    log_path = tmp_path / "audit" / "trail" / "audit.jsonl"
    private = edge.model_copy(
        update={"audit": edge.audit.model_copy(update={"path": str(log_path)})}
    )
    old = os.umask(0o022)  # the common default, under which files come out 0644
    try:
        app = create_app(private, assemble(private, embedder, ScriptedGenerator([ANSWER])))
        with TestClient(app=app) as client:
            r = client.post("/v1/search", json={"query": "hotel"}, headers=bearer(add_key(private)))
            assert r.status_code == 200
    finally:
        os.umask(old)
    assert json.loads(log_path.read_text())["action"] == "search"
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    for folder in (log_path.parent, log_path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder


# ---- 16.8: schema pages need nothing from another origin --------------------------------------


@pytest.mark.slow
def test_no_schema_page_loads_anything_from_another_origin(
    app_client: Client, edge: Settings
) -> None:
    admin = bearer(add_key(edge))
    paths = sorted({r.path for r in app_client.app.routes if r.path.startswith("/schema")})
    assert "/schema/openapi.json" in paths
    served = 0
    for path in paths:
        r = app_client.get(path, headers=admin)
        if r.status_code != 200:
            continue
        served += 1
        # Anything a browser would fetch: src/href/url()/import of an absolute or protocol-relative URL.
        fetched = re.findall(
            r"""(?:src|href)\s*=\s*["']?\s*((?:[a-z]+:)?//[^"'\s>]+)""", r.text, re.I
        )
        fetched += re.findall(r"""url\(\s*["']?((?:[a-z]+:)?//[^"')]+)""", r.text, re.I)
        assert not fetched, (path, fetched)
        assert not re.search(r"cdn\.|unpkg\.com|jsdelivr", r.text), path
    assert served >= 1
    for page in (
        "/schema",
        "/schema/swagger",
        "/schema/redoc",
        "/schema/elements",
        "/schema/rapidoc",
    ):
        r = app_client.get(page, headers=admin)
        assert r.status_code == 404 or not re.search(r"<script[^>]+src=[\"']?https?:", r.text), page


# ---- 15.5: a broken keys file after a rotation -------------------------------------------------


@pytest.mark.slow
def test_a_keys_file_rewritten_to_garbage_keeps_the_last_good_keys(
    app_client: Client,
    edge: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = bearer(add_key(edge))
    assert app_client.post("/v1/search", json={"query": "hotel"}, headers=token).status_code == 200
    good = edge.keys_file.read_text()
    with caplog.at_level(logging.ERROR, logger="rag_server.auth"):
        edge.keys_file.write_text('{"keys": [ {"id": "half a rota')  # a rotation gone wrong
        for _ in range(3):
            r = app_client.post("/v1/search", json={"query": "hotel"}, headers=token)
            assert r.status_code == 200, r.text
    assert len([m for m in caplog.messages if str(edge.keys_file) in m]) == 1  # logged once
    ready = app_client.get("/readyz")
    assert ready.status_code == 200  # still serving: taking every replica out would be worse
    assert "last good" in ready.json()["checks"]["api_keys"]
    metrics = samples(app_client.get("/metrics", headers=token).text)
    assert metrics[("rag_api_keys_file_valid", frozenset())] == 0
    # A repaired file applies at once, also the keys it adds.
    edge.keys_file.write_text(good)
    fresh = bearer(add_key(edge))
    assert app_client.post("/v1/search", json={"query": "hotel"}, headers=fresh).status_code == 200
    assert app_client.get("/readyz").json()["checks"]["api_keys"].startswith("ok")
    metrics = samples(app_client.get("/metrics", headers=fresh).text)
    assert metrics[("rag_api_keys_file_valid", frozenset())] == 1
