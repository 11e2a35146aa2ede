"""API keys, roles, collections and document-level access, over the real app, embedder and Chroma.

The example corpus is laid out as an organisation would: HR's leave policy readable by `hr`, IT's
security policy by `it` (both stamped by sidecar files), everything else public.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import TestClient

from ingest.build import build_pipeline
from ingest.pipeline import SIDECAR
from rag_core.access import UNRESTRICTED
from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer

HR_DOC = "hr/leave-policy.docx"
IT_DOC = "it/it-security.html"
LEAVE_Q = "How many days of paid annual leave do employees get?"


class EchoGenerator(ScriptedGenerator):
    """Repeats every source it was shown, word for word: whatever reaches the prompt would reach
    the answer, so a leak into the prompt shows up in the response."""

    def generate(self, prompt, max_tokens, deadline, on_token=None):  # type: ignore[no-untyped-def]
        self.replies = [prompt.text or " ".join(c for _, c in prompt.messages)]
        return super().generate(prompt, max_tokens, deadline, on_token)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    root = tmp_path_factory.mktemp("org")
    docs = root / "docs"
    for folder, name, groups in [
        ("hr", "leave-policy.docx", "hr"),
        ("it", "it-security.html", "it"),
        ("public", "onboarding.md", None),
        ("public", "expenses-policy.pdf", None),
    ]:
        (docs / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / name, docs / folder / name)
        if groups:
            (docs / folder / SIDECAR).write_text(groups + "\n")
    settings = load_settings(
        data_dir=root / "data",
        audit={"path": str(root / "audit.jsonl")},
        grounding={"gate_threshold": 0.2, "extractive_threshold": 0.5},
    )
    report = build_pipeline(settings, embedder).run([docs])
    assert report.added == 4 and not report.failed
    return settings


@pytest.fixture(scope="module")
def client(org: Settings, embedder: Embedder) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(org, assemble(org, embedder, EchoGenerator(["-"])))
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def _ids(body: object) -> set[str]:
    """Every document id anywhere in a response body."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "document_id" and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(body)
    return found


def test_every_route_but_health_needs_a_valid_key(client: TestClient, org: Settings) -> None:  # type: ignore[type-arg]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    for method, path, body in [
        ("POST", "/v1/search", {"query": "leave"}),
        ("POST", "/v1/ask", {"question": LEAVE_Q}),
        ("GET", "/v1/documents", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("GET", "/metrics", None),
        ("GET", "/schema/openapi.json", None),
    ]:
        for headers in (
            {},
            {"Authorization": "Bearer rag_nobody_" + "x" * 43},
            {"Authorization": "Basic abc"},
        ):
            r = client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["www-authenticate"].startswith("Bearer")
    token = add_key(org)
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert client.post("/v1/search", json={"query": "x"}, headers=bearer(forged)).status_code == 401
    assert client.post("/v1/search", json={"query": "x"}, headers=bearer(token)).status_code == 200


def test_keys_file_holds_only_hashes(org: Settings) -> None:
    token = add_key(org, key_id="hashcheck")
    text = org.keys_file.read_text()
    assert token not in text and token.removeprefix("rag_hashcheck_") not in text
    assert '"sha256"' in text and oct(org.keys_file.stat().st_mode)[-3:] == "600"


def test_a_reader_may_not_upload_or_delete(client: TestClient, org: Settings) -> None:  # type: ignore[type-arg]
    reader = bearer(add_key(org, "reader"))
    files = {"file": ("note.txt", b"A reader tried to upload this.", "text/plain")}
    r = client.post("/v1/documents", files=files, headers=reader)
    assert r.status_code == 403 and r.json()["status"] == 403
    assert client.delete(f"/v1/documents/{HR_DOC}", headers=reader).status_code == 403


def test_a_key_limited_to_collections_gets_403_elsewhere(client: TestClient, org: Settings) -> None:  # type: ignore[type-arg]
    only_other = bearer(add_key(org, collections=["other-docs"]))
    r = client.post("/v1/search", json={"query": "leave"}, headers=only_other)
    assert r.status_code == 403 and "default" in r.json()["detail"]
    anyone = bearer(add_key(org))
    r = client.post(
        "/v1/search", json={"query": "leave", "collection": "no-such-collection"}, headers=anyone
    )
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    models = client.get("/v1/models", headers=only_other).json()["data"]
    assert models == []


def test_groups_decide_which_documents_a_key_reads(client: TestClient, org: Settings) -> None:  # type: ignore[type-arg]
    hr = bearer(add_key(org, groups=["hr"]))
    nobody = bearer(add_key(org, groups=[]))
    search = {"query": LEAVE_Q, "top_k": 10}
    assert HR_DOC in _ids(client.post("/v1/search", json=search, headers=hr).json())
    public_only = client.post("/v1/search", json=search, headers=nobody).json()
    assert public_only["results"], "public documents still answer"
    assert not _ids(public_only) & {HR_DOC, IT_DOC}
    listed = {
        d["document_id"] for d in client.get("/v1/documents", headers=nobody).json()["documents"]
    }
    assert listed == {"public/onboarding.md", "public/expenses-policy.pdf"}
    assert client.get(f"/v1/documents/{HR_DOC}", headers=nobody).status_code == 404
    assert client.get(f"/v1/documents/{HR_DOC}", headers=hr).json()["groups"] == ["hr"]
    # Filters cannot widen access: naming the document still finds nothing.
    named = {"query": LEAVE_Q, "filters": {"document_id": [HR_DOC]}}
    assert client.post("/v1/search", json=named, headers=nobody).json()["results"] == []


def test_the_audit_log_records_who_asked_what_and_what_came_back(
    client: TestClient,
    org: Settings,  # type: ignore[type-arg]
) -> None:
    hr = add_key(org, groups=["hr"], key_id="audit-hr")
    r = client.post("/v1/ask", json={"question": LEAVE_Q}, headers=bearer(hr))
    assert r.status_code == 200
    lines = [json.loads(line) for line in Path(org.audit.path).read_text().splitlines()]
    entry = [e for e in lines if e["key_id"] == "audit-hr"][-1]
    assert entry["action"] == "ask" and entry["collection"] == "default"
    assert entry["question"] == LEAVE_Q and entry["status"] == r.json()["status"]
    assert HR_DOC in entry["documents"] and entry["latency_ms"] > 0
    assert set(entry) == {
        "time",
        "action",
        "key_id",
        "collection",
        "question",
        "documents",
        "status",
        "latency_ms",
    }
    assert hr not in Path(org.audit.path).read_text()


def test_audit_can_keep_only_a_hash_of_the_question(
    org: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    audit = tmp_path / "hashed.jsonl"
    hashed = org.model_copy(
        update={"audit": org.audit.model_copy(update={"path": str(audit), "hash_questions": True})}
    )
    app = create_app(hashed, assemble(hashed, embedder, ScriptedGenerator(["-"])))
    with TestClient(app=app) as c:
        c.post("/v1/search", json={"query": "secret question text"}, headers=bearer(add_key(org)))
    text = audit.read_text()
    assert "secret question text" not in text and "question_sha256" in text


_WORDS = ["falcon", "granite", "harbour", "juniper", "lantern", "meadow", "nickel", "orchid"]


@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    stamps=st.lists(st.sampled_from(["", "hr", "it", "hr,it", "legal"]), min_size=3, max_size=5),
    key_groups=st.sets(st.sampled_from(["hr", "it", "legal", "ops"]), max_size=2),
    query_words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3),
)
def test_no_route_ever_returns_a_document_the_key_may_not_read(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    stamps: list[str],
    key_groups: set[str],
    query_words: list[str],
) -> None:
    """Random documents, groups and keys: search, ask (and its stream), listing and chat never
    return a forbidden document's id, text or citation."""
    root = tmp_path_factory.mktemp("acl")
    settings = load_settings(
        data_dir=root / "data",
        audit={"path": str(root / "audit.jsonl")},
        grounding={"gate_threshold": -1.0, "extractive_threshold": -1.0},
    )
    pipeline = build_pipeline(settings, embedder)
    secrets: dict[str, str] = {}
    allowed: set[str] = set()
    for i, stamp in enumerate(stamps):
        folder = root / "docs" / f"d{i}"
        folder.mkdir(parents=True)
        marker = f"MARKER{i}X{len(stamps)}"
        secrets[f"d{i}/doc.md"] = marker
        words = " ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(5))
        (folder / "doc.md").write_text(f"# Note {i}\n\nThe {words} record {marker} is kept here.\n")
        if stamp:
            (folder / SIDECAR).write_text(stamp)
        groups = set(stamp.split(",")) - {""}
        if not groups or groups & key_groups:
            allowed.add(f"d{i}/doc.md")
    assert not pipeline.run([root / "docs"]).failed
    token = add_key(settings, groups=key_groups)
    app = create_app(settings, assemble(settings, embedder, EchoGenerator(["-"])))
    query = " ".join(query_words)
    forbidden = set(secrets) - allowed
    with TestClient(app=app) as c:
        c.headers.update(bearer(token))
        bodies = [
            c.post("/v1/search", json={"query": query, "top_k": 10}).text,
            c.post("/v1/ask", json={"question": query, "top_k": 10}).text,
            c.post("/v1/ask", json={"question": query, "stream": True}).text,
            c.get("/v1/documents").text,
            c.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": query}]}
            ).text,
        ]
        shown = {d: c.get(f"/v1/documents/{d}") for d in secrets}
    for text in bodies:
        for doc in forbidden:
            assert doc not in text and secrets[doc] not in text, (doc, text[:300])
    listed = {d["document_id"] for d in json.loads(bodies[3])["documents"]}
    assert listed == allowed
    # A forbidden document looks exactly like a missing one.
    assert {d for d, r in shown.items() if r.status_code == 200} == allowed
    assert all(r.status_code == 404 for d, r in shown.items() if d in forbidden)


def test_groups_come_from_the_cli_flag_and_sidecars_and_restamp_on_change(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    from ingest.cli import run

    docs = tmp_path / "tree"
    (docs / "legal").mkdir(parents=True)
    shutil.copy(EXAMPLES / "onboarding.md", docs / "onboarding.md")
    shutil.copy(EXAMPLES / "office-facilities.txt", docs / "legal" / "facilities.txt")
    (docs / "legal" / SIDECAR).write_text("legal, board\n")
    assert run([str(docs), "--groups", "staff"], settings) == 0
    corpus = assemble(settings, embedder, ScriptedGenerator(["-"])).catalog.get()
    stamps = {d.document_id: d.groups for d in corpus.documents(UNRESTRICTED)}
    assert stamps == {"onboarding.md": ("staff",), "legal/facilities.txt": ("board", "legal")}

    (docs / "legal" / SIDECAR).write_text("")  # now public
    assert run([str(docs), "--groups", "staff"], settings) == 0
    stamps = {d.document_id: d.groups for d in corpus.documents(UNRESTRICTED)}
    assert stamps["legal/facilities.txt"] == ()
    with pytest.raises(SystemExit, match="2"):
        run([str(docs), "--groups", "*"], settings)  # '*' is for keys only


def test_a_second_if_none_says_how_to_replace_a_lost_admin_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make run` adds the first admin key with --if-none; run again, it must not be a dead end
    for someone who lost that key (only hashes are stored, so it cannot be shown again)."""
    from rag_server.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    add = ["keys", "add", "--id", "local-admin", "--role", "admin", "--groups", "*", "--if-none"]
    with pytest.raises(SystemExit) as first:
        main(add)
    assert first.value.code == 0 and capsys.readouterr().out.startswith("rag_local-admin_")
    with pytest.raises(SystemExit) as second:
        main(add)
    said = capsys.readouterr()
    assert second.value.code == 0 and said.out == ""
    assert "rag-server keys add --role admin" in said.err and "keys revoke" in said.err
