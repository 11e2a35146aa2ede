"""rag-eval's scoring rules, and a run against the real app served in-process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rag_server.evaluation import (
    Record,
    _post,
    _table,
    interval,
    is_correct,
    mean_interval,
    run_one,
    summarise,
)


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("Synopses must stay under 80 characters [1].", ["80 characters"], True),
        ("It must be OPTIONAL.", ["optional"], True),
        ("Use the area/section form.", ["area/section"], True),
        ("It is 800 characters.", ["80 characters"], False),  # not a substring match on words
        ("word " * 81 + "80 characters", ["80 characters"], False),  # over 80 words
        ("Anything.", [], False),
    ],
)
def test_accuracy_is_a_gold_string_inside_a_short_answer(
    answer: str, gold: list[str], expected: bool
) -> None:
    assert is_correct(answer, gold) is expected


def _record(answerable: bool, status: str, correct: bool = False, **kw: object) -> Record:
    base = dict(
        id="x", answerable=answerable, status=status, correct=correct,
        kind="answerable" if answerable else "adjacent",
        hit_at_5=True if answerable else None, best_score=0.5, removed=0, kept=1,
        latency_s=1.0, answer="a",
    )  # fmt: skip
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_summary_splits_answerable_and_unanswerable() -> None:
    records = [
        _record(True, "answered", correct=True, removed=1, kept=2),
        _record(True, "insufficient_evidence", kept=0, hit_at_5=False, pointed=True),
        _record(True, "insufficient_evidence", kept=0, pointed=False),
        _record(False, "insufficient_evidence", kept=0),
        _record(False, "extractive", latency_s=3.0),
    ]
    summary = summarise(records)
    assert summary["answerable"]["accuracy"] == pytest.approx(33.3)
    assert summary["answerable"]["hit_at_5"] == pytest.approx(66.7)
    assert summary["answerable"]["false_abstention"] == pytest.approx(66.7)
    assert summary["answerable"]["refusal_points_to_answer"] == 50.0  # of the two refused
    assert summary["unanswerable"]["abstention"] == 50.0
    assert summary["overall"]["questions"] == 5
    assert summary["overall"]["removed_share"] == pytest.approx(100 * 1 / (1 + 2 + 1), abs=0.1)
    json.dumps(summary)


def test_each_rate_carries_its_wilson_interval_and_the_table_prints_it() -> None:
    # 35 of 75 and 5 of 10: the intervals worked by hand from Wilson's formula.
    records = [_record(True, "extractive", correct=k < 35) for k in range(75)]
    records += [
        _record(False, "insufficient_evidence" if k < 5 else "extractive") for k in range(10)
    ]
    summary = summarise(records)
    assert summary["answerable"]["interval_95"]["accuracy"] == [35.8, 57.8]
    assert summary["unanswerable"]["interval_95"]["abstention_adjacent"] == [23.7, 76.3]
    assert summary["overall"]["interval_95"]["abstention_adversarial"] is None  # none asked
    assert interval([False] * 10) == [0.0, 27.8]  # none right still leaves room above
    assert "| accuracy | 46.7 [35.8-57.8] | 46.7 [35.8-57.8] | – |" in _table(summary)
    json.dumps(summary)


def test_a_mean_of_corpora_keeps_a_width_even_when_every_corpus_is_perfect() -> None:
    # sqrt((21 / 22**3 + 13 / 14**3) / 4) * 1.96 = 0.080: not [100, 100]
    assert mean_interval([(20, 20), (12, 12)]) == (100.0, [92.0, 100.0])
    value, (low, high) = mean_interval([(30, 60), (50, 100), (0, 0)])  # an empty corpus is skipped
    assert value == 50.0 and low < 50.0 < high
    alone = interval([True] * 30 + [False] * 30)  # the smaller corpus on its own
    assert alone is not None and high - low < alone[1] - alone[0]  # two corpora pin it better
    assert mean_interval([]) == (None, None)


def test_the_committed_dev_set_has_the_required_shape() -> None:
    path = Path(__file__).resolve().parent.parent / "eval" / "debian-policy.jsonl"
    items = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(items) >= 60 and sum(not i["answerable"] for i in items) >= 20
    for item in items:
        assert set(item) >= {"id", "question", "answerable", "answers", "source"}
        assert bool(item["answers"]) == item["answerable"] == (item["source"] is not None)


class _Overloaded:
    """A server that answers with the given statuses in turn (429/503 carry Retry-After: 0)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls = 0

    def post(self, path: str, json: object) -> httpx.Response:
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        return httpx.Response(
            status, headers={"retry-after": "0"}, json={}, request=httpx.Request("POST", path)
        )


def test_rag_eval_waits_out_429_and_503_then_gives_up_after_its_attempts() -> None:
    busy = _Overloaded([429, 503, 200])
    response, latency = _post(busy, "/v1/ask", {"question": "q"})
    assert response.status_code == 200 and busy.calls == 3 and latency >= 0
    always = _Overloaded([429])
    with pytest.raises(httpx.HTTPStatusError):
        _post(always, "/v1/ask", {"question": "q"}, attempts=3)
    assert always.calls == 3


class _Refusing:
    """A server that refuses every question, pointing to the given passages."""

    def __init__(self, related: list[str]) -> None:
        self.related = related

    def post(self, path: str, json: object) -> httpx.Response:
        body = {"results": [{"source": "leave.md", "score": 0.6}]}
        if path == "/v1/ask":
            related = [{"quote": quote} for quote in self.related]
            body = {"status": "insufficient_evidence", "answer": "No.", "related": related}
        return httpx.Response(200, json=body, request=httpx.Request("POST", path))


@pytest.mark.parametrize(
    ("related", "pointed"),
    [
        (["Staff get 27 days.", "Jury service is paid leave."], True),
        (["Staff get 27 days."], False),
        (["Jury service is unpaid leave."], False),  # the gold string, not its words apart
        ([], False),
    ],
)
def test_a_refused_answerable_question_records_whether_its_refusal_points_to_the_answer(
    related: list[str], pointed: bool
) -> None:
    item = {"id": "j", "question": "Is jury duty paid?", "answerable": True,
            "answers": ["jury service is paid"], "source": "leave.md"}  # fmt: skip
    record = run_one(_Refusing(related), item)
    assert record.refused and record.pointed is pointed and not record.correct
    record = run_one(_Refusing(related), {**item, "answerable": False, "answers": []})
    assert record.pointed is None  # only an answerable question's refusal is scored


_EVAL = Path(__file__).resolve().parent.parent / "eval"
# The suite's corpora, and the twins: a corpus read again in another format with its questions.
SUITE = {
    **json.loads((_EVAL / "corpora.json").read_text()),
    **json.loads((_EVAL / "twins.json").read_text()),
}
COMMITTED = [name for name, spec in SUITE.items() if spec["paths"][0].startswith("eval/")]


@pytest.mark.parametrize("name", COMMITTED)
def test_each_committed_corpus_has_a_question_set_whose_answers_are_in_its_documents(
    name: str,
) -> None:
    """At least 60 questions, a third of them unanswerable, of both kinds (topic-adjacent and
    adversarial); every gold answer is in the text the loader extracts from its source (on one
    of its gold pages, for a PDF)."""
    from ingest.loaders import load
    from rag_server.evaluation import holds_gold, source_in

    root = Path(__file__).resolve().parent.parent
    spec = SUITE[name]
    items = [json.loads(x) for x in (root / spec["questions"]).read_text().splitlines() if x]
    unanswerable = [i for i in items if not i["answerable"]]
    assert len(items) >= 60 and 3 * len(unanswerable) >= len(items)
    assert {i["kind"] for i in unanswerable} == {"adjacent", "adversarial"}
    files = {
        p.name: p
        for base in spec["paths"]
        for p in ([root / base] if (root / base).is_file() else (root / base).rglob("*"))
    }
    loaded: dict[str, object] = {}
    for item in items:
        assert bool(item["answers"]) == item["answerable"] == (item["source"] is not None)
        if not item["answerable"]:
            continue
        source = source_in(spec, item["source"])
        if source not in loaded:
            path = files[source]
            loaded[source] = load(path, path.read_bytes())
        doc = loaded[source]
        text = doc.text  # type: ignore[attr-defined]
        if item.get("pages"):
            starts = [*doc.page_starts, len(text)]  # type: ignore[attr-defined]
            text = " ".join(text[starts[p - 1] : starts[p]] for p in item["pages"])
        assert holds_gold(text, item["answers"]), item["id"]
