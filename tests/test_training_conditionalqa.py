"""ConditionalQA pairs for the answer scorer (training/answer_scorer/conditionalqa.py): which
evidence sentences become positives and negatives, on items shaped like its train split."""

from __future__ import annotations

from typing import Any

from tests.training_scripts import load_script

cqa = load_script("conditionalqa")

PAGE = "https://www.gov.uk/paternity-pay-leave"
NOTICE = "<p>You must tell your employer at least 15 weeks before the week the baby is due.</p>"
WEEKS = "<p>You can choose to take either 1 or 2 weeks of paternity leave.</p>"
PAY = "<p>The statutory weekly rate of Paternity Pay is £156.66, or 90% of your earnings.</p>"
SHORT = "<li>be an employee</li>"  # too few content words to be quoted, so never a pair


def _item(n: int, question: str, answers: list[str], evidences: list[str], **kw: Any) -> dict:  # type: ignore[type-arg]
    return {
        "id": f"train-{n}",
        "url": kw.get("url", PAGE),
        "question": question,
        "scenario": "My partner is expecting our first child in March.",
        "answers": [[a, []] for a in answers],
        "evidences": evidences,
        "not_answerable": kw.get("not_answerable", False),
    }


ITEMS = [
    _item(0, "How early do I have to tell my boss?", ["at least 15 weeks"], [NOTICE, SHORT]),
    _item(1, "How many weeks of leave can I take?", ["1 or 2 weeks"], [WEEKS]),
    _item(2, "Can I get paternity pay?", ["yes"], [PAY, SHORT]),
    _item(3, "Is paternity leave paid at my full salary?", [], [], not_answerable=True),
    _item(
        4,
        "Who pays the grant for a new bike?",
        ["the council"],
        ["<p>Cycle grants are paid by the council to residents who commute to work.</p>"],
        url="https://www.gov.uk/cycle-grants",
    ),
]


def test_positives_hold_the_answer_and_negatives_come_from_the_same_page() -> None:
    rows = list(cqa.pairs(ITEMS, hard=3, seed=1))
    by_question: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_question.setdefault(row["question"], []).append(row)

    notice = by_question["How early do I have to tell my boss?"]
    assert [r["sentence"] for r in notice if r["label"] == 1] == [cqa.clean(NOTICE)]
    negatives = [r["sentence"] for r in notice if r["label"] == 0]
    assert cqa.clean(WEEKS) in negatives and cqa.clean(PAY) in negatives
    assert cqa.clean(SHORT) not in {r["sentence"] for r in rows}  # never a pair, either label

    # A yes/no answer names no sentence: the question is left out.
    assert "Can I get paternity pay?" not in by_question
    # An unanswerable question: its page's sentences, all negative.
    unanswerable = by_question["Is paternity leave paid at my full salary?"]
    assert unanswerable and all(r["label"] == 0 and r["impossible"] for r in unanswerable)
    assert {r["sentence"] for r in unanswerable} >= {cqa.clean(NOTICE), cqa.clean(PAY)}


def test_evidence_reads_as_the_server_reads_text() -> None:
    assert cqa.clean("<p>Rates&nbsp;are&#160;£156.66 &amp; up</p>") == "Rates are £156.66 & up"
