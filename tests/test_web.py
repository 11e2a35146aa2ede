"""The web page and the API it adds, over the real app, embedder and Chroma (the page's behaviour
in a browser is tests/test_web_browser.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ingest.loaders import load
from rag_core.settings import Settings
from rag_server.web.api import assemble_text
from tests.conftest import EXAMPLES, ClientFor, ScriptedGenerator, add_key, bearer, make_pdf

Client = TestClient[Litestar]


@pytest.fixture
def ingested(examples: Settings) -> Settings:
    grounding = examples.grounding.model_copy(update={"extractive_threshold": 0.8})
    return examples.model_copy(update={"grounding": grounding})


@pytest.fixture
def client(ingested: Settings, client_for: ClientFor) -> Client:
    return client_for(ingested, ScriptedGenerator(["unused"]))


class _Assets(HTMLParser):
    """Every URL the page loads, and any inline script or style it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.urls += [v for k, v in attrs if k in {"src", "href"} and v and not v.startswith("#")]
        self.inline += [f"{tag} {k}" for k, _ in attrs if k == "style" or k.startswith("on")]
        self._in_script = tag == "script"
        if tag == "style":
            self.inline.append("style element")
        if tag == "script" and "src" not in named:
            self.inline.append("script element")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script text")


def test_the_page_and_its_assets_are_served_without_a_key_from_this_origin_only(
    client: Client,
) -> None:
    client.headers.pop("Authorization")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    parsed = _Assets()
    parsed.feed(page.text)
    assert parsed.inline == []  # the policy would block them; nothing inline is needed
    assert {u.split("?")[0] for u in parsed.urls} == {"/static/app.css", "/static/app.js"}
    for url in parsed.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-security-policy"] == policy
        assert asset.headers["x-content-type-options"] == "nosniff"
        # Offline: nothing in the script or stylesheet points at another origin.
        assert not re.findall(r"(?:https?:)?//[\w.-]+\.\w", asset.text), url


def test_the_page_opens_no_api_route_without_a_key(client: Client, ingested: Settings) -> None:
    client.headers.pop("Authorization")
    for path in ("/v1/me", "/v1/document-text/leave-policy.docx", "/v1/documents/"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"


def test_me_names_the_role_and_only_the_collections_the_key_may_use(
    client: Client, ingested: Settings
) -> None:
    upload = client.post(
        "/v1/documents/",
        files={"file": ("note.txt", b"The Osaka office has a rooftop garden.", "text/plain")},
        data={"collection": "other-docs"},
    )
    assert upload.status_code == 201, upload.text
    admin = client.get("/v1/me").json()
    assert admin["role"] == "admin"
    assert admin["collections"] == ["default", "other-docs"]
    reader = add_key(ingested, "reader", collections=["default"], key_id="reader-one")
    me = client.get("/v1/me", headers=bearer(reader)).json()
    assert me == {
        "key_id": "reader-one",
        "role": "reader",
        "collections": ["default"],
        "default_collection": "default",
    }


def test_a_citations_offsets_select_its_quote_in_the_document_text(
    ingested: Settings, client_for: ClientFor
) -> None:
    client = client_for(
        ingested, ScriptedGenerator(["Employees get 27 days of paid annual leave per year [1]."])
    )
    body = client.post("/v1/ask", json={"question": "How many days of annual leave?"}).json()
    quotes = body["citations"] + body["related"]
    assert quotes, body
    for quote in quotes:
        doc = client.get(f"/v1/document-text/{quote['document_id']}").json()
        assert doc["text"][quote["start"] : quote["end"]] == quote["quote"]
        assert doc["title"] == quote["title"] and doc["has_file"] is False


def test_the_assembled_text_is_the_loaders_text_wherever_a_chunk_covers_it(
    client: Client,
) -> None:
    """Overlapping chunks laid at their offsets give back the extracted text (whitespace where no
    chunk kept any), and PDF pages begin in order."""
    for path in sorted(EXAMPLES.iterdir()):
        original = load(path, path.read_bytes()).text
        doc = client.get(f"/v1/document-text/{path.name}").json()
        text = doc["text"]
        assert len(original.strip()) * 0.9 <= len(text) <= len(original), path.name
        mismatched = [i for i, (a, o) in enumerate(zip(text, original, strict=False)) if a != o]
        assert all(text[i].isspace() for i in mismatched), path.name
        if path.suffix == ".pdf":
            pages = [p["page"] for p in doc["pages"]]
            assert pages == sorted(pages) and pages[0] == 1 and len(pages) >= 2


def test_assemble_text_keeps_offsets_across_overlaps_and_gaps() -> None:
    from dataclasses import replace

    from rag_core.store import Chunk

    text = "Alpha beta gamma.\n\nDelta epsilon zeta eta."
    base = Chunk("c", "d", "d", "D", "", 0, 0, 0, 3, "h", "p", "t")
    spans = [(0, 11, 1), (6, 17, 1), (19, 42, 2)]  # overlap 6..11, gap 17..19
    chunks = [
        replace(base, chunk_id=f"c{i}", text=text[a:b], start=a, end=b, page=p)
        for i, (a, b, p) in enumerate(spans)
    ]
    assembled, pages = assemble_text(list(reversed(chunks)))
    assert len(assembled) == 42
    for a, b, _ in spans:
        assert assembled[a:b] == text[a:b]
    assert assembled[17:19].isspace()
    assert [(p.page, p.start) for p in pages] == [(1, 0), (2, 19)]


def test_a_reader_gets_neither_text_nor_file_of_a_document_outside_its_groups(
    client: Client, ingested: Settings, tmp_path: Path
) -> None:
    pdf = make_pdf(tmp_path / "salaries.pdf", ["Salary bands are reviewed every March."])
    upload = client.post(
        "/v1/documents/",
        files={"file": ("salaries.pdf", pdf.read_bytes(), "application/pdf")},
        data={"groups": "hr"},
    )
    assert upload.status_code == 201, upload.text
    doc_id = upload.json()["document"]["document_id"]
    reader = bearer(add_key(ingested, "reader", groups=[]))
    hr = bearer(add_key(ingested, "reader", groups=["hr"]))
    for path in (f"/v1/document-text/{doc_id}", f"/v1/document-file/{doc_id}"):
        assert client.get(path, headers=reader).status_code == 404, path
        assert client.get(path, headers=hr).status_code == 200, path
    listed = client.get("/v1/documents/", params={"contains": "salar"}, headers=reader).json()
    assert listed["total"] == 0
    listed = client.get("/v1/documents/", params={"contains": "salar"}, headers=hr).json()
    assert [d["document_id"] for d in listed["documents"]] == [doc_id]


def test_an_uploaded_file_comes_back_as_a_sandboxed_attachment(
    client: Client, tmp_path: Path
) -> None:
    pdf = make_pdf(tmp_path / "guide.pdf", ["Page one text.", "The atrium opens at 07:45."])
    data = pdf.read_bytes()
    upload = client.post(
        "/v1/documents/", files={"file": ("guide.pdf", data, "application/pdf")}
    ).json()
    doc_id = upload["document"]["document_id"]
    assert client.get(f"/v1/document-text/{doc_id}").json()["has_file"] is True
    original = client.get(f"/v1/document-file/{doc_id}")
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"].startswith("attachment")
    assert original.headers["content-security-policy"].startswith("sandbox")
    # A document from `rag-ingest`: its file lives where the server cannot see it.
    missing = client.get("/v1/document-file/leave-policy.docx")
    assert missing.status_code == 404
    assert "not kept" in missing.json()["detail"]


def test_the_documents_list_filters_by_title_or_name_in_any_case(client: Client) -> None:
    found = client.get("/v1/documents/", params={"contains": "LEAVE"}).json()
    assert [d["document_id"] for d in found["documents"]] == ["leave-policy.docx"]
    assert found["total"] == 1
    everything = client.get("/v1/documents/", params={"limit": 2, "offset": 2}).json()
    assert everything["total"] == 5 and len(everything["documents"]) == 2
