"""Misspelt question words are read as the documents' words (rag_server/spelling.py): typing slips
are corrected, while terms of art the documents do not use, and words that only documents the
caller may not read contain, are left as asked."""

from __future__ import annotations

import pytest

from rag_core.access import UNRESTRICTED, Access
from rag_core.records import Chunk
from rag_core.settings import Settings
from rag_server.rag import Rag
from rag_server.retrieval import KeywordSnapshot
from rag_server.spelling import Speller
from tests.conftest import ClientFor, ScriptedGenerator
from tests.test_answerability import _defaults

PASSAGES = [
    ("Every employee gets 27 days of paid annual leave per year.", ()),
    ("Laptops are collected from the IT desk in Room 4.12 on your first day.", ()),
    ("Upload the package with git push once the system tests pass.", ()),
    ("Compare the package against the previous upload before you push it.", ()),
    ("The merger with Globex closes in March; the payment of the bonus follows.", ("board",)),
    ("The bonus is paid in March to every employee.", ()),
]


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller.load()


def _chunk(i: int, text: str, groups: tuple[str, ...]) -> Chunk:
    return Chunk(
        chunk_id=f"c{i}", document_id=f"d{i}", source=f"d{i}.md", title="T", text=text,
        start=0, end=len(text), chunk_index=0, chunk_count=1, content_hash="h", pipeline="p",
        ingested_at="t", groups=groups,
    )  # fmt: skip


@pytest.fixture(scope="module")
def snapshot() -> KeywordSnapshot:
    return KeywordSnapshot.build(1, [_chunk(i, *p) for i, p in enumerate(PASSAGES)])


@pytest.mark.parametrize(
    ("asked", "read"),
    [
        (
            "how many dayz of paid anual leave do i get per yeer?",
            "how many days of paid annual leave do i get per year?",
        ),
        (
            "where are lpatops colected on the first day?",
            "where are laptops collected on the first day?",
        ),
    ],
)
def test_typing_slips_are_read_as_the_documents_words(
    speller: Speller, snapshot: KeywordSnapshot, asked: str, read: str
) -> None:
    assert speller.correct(asked, snapshot.rows(UNRESTRICTED)) == read


@pytest.mark.parametrize(
    "asked",
    [
        "How do I upload the package with dgit push?",  # a term of art: not "git"
        "Which systemd unit runs the tests?",  # not "system": a word plus a letter at its end
        "Which compat level does the package upload need?",  # shares no passage with "compare"
        "How many days of paid leave for a wedding?",  # spelt right: nothing to do
        "Is the VLTP aplication approved?",  # no passage holds a word near "aplication"
        "Who approves Globex expenses?",  # capitalised: a name
    ],
)
def test_terms_of_art_and_right_words_are_left_as_asked(
    speller: Speller, snapshot: KeywordSnapshot, asked: str
) -> None:
    assert speller.correct(asked, snapshot.rows(UNRESTRICTED)) == asked


def test_a_word_only_documents_the_caller_may_not_read_contain_is_never_proposed(
    speller: Speller, snapshot: KeywordSnapshot
) -> None:
    asked = "when is the bonus paymnet in march?"
    # The board reads the merger passage, the one that says "payment": the slip is corrected.
    board = snapshot.rows(Access(frozenset({"board"})))
    assert speller.correct(asked, board) == "when is the bonus payment in march?"
    # Everyone else does not: correcting it would tell them such a document exists.
    assert speller.correct(asked, snapshot.rows(Access())) == asked


def test_the_answer_says_what_was_searched_for_when_it_differs_from_what_was_asked(
    examples: Settings, client_for: ClientFor
) -> None:
    """Over the real app and the examples: the misspelt question is answered from the leave
    policy, and `read_as` shows the question as searched; as typed, there is no `read_as`."""
    client = client_for(_defaults(examples), ScriptedGenerator(["never asked"], style="base"))
    body = client.post("/v1/ask", json={"question": "how many dayz of paid anual leave?"}).json()
    assert "27 days" in body["answer"], body
    assert body["read_as"] == "how many days of paid annual leave?"
    body = client.post("/v1/ask", json={"question": "How many days of paid annual leave?"}).json()
    assert "27 days" in body["answer"] and body["read_as"] is None


def test_spelling_is_left_alone_when_turned_off(examples: Settings, client_for: ClientFor) -> None:
    settings = _defaults(examples)
    grounding = settings.grounding.model_copy(update={"correct_spelling": False})
    client = client_for(
        settings.model_copy(update={"grounding": grounding}),
        ScriptedGenerator(["never asked"], style="base"),
    )
    body = client.post("/v1/ask", json={"question": "how many dayz of paid anual leave?"}).json()
    assert body["read_as"] is None


def test_one_request_asks_the_store_for_its_revision_once(
    examples: Settings, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the question (spelling) and retrieval share one keyword snapshot: each snapshot
    taken asks the store for its revision, an HTTP round trip when Chroma is a server."""
    client = client_for(_defaults(examples), ScriptedGenerator(["never asked"], style="base"))
    rag: Rag = client.app.state.rag
    store = rag.catalog.get().store
    asked: list[int] = []
    refresh = store.refresh

    def counted() -> int:
        asked.append(1)
        return refresh()

    monkeypatch.setattr(store, "refresh", counted)
    body = client.post("/v1/ask", json={"question": "how many dayz of paid anual leave?"}).json()
    assert "27 days" in body["answer"] and body["read_as"], body
    assert len(asked) == 1
