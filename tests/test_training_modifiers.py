"""Rule-made questions about what a paragraph never mentions (training/answer_scorer/modifiers.py):
an answerable question gets a modifier another question of its article uses and its paragraph
lacks, and its answer sentence becomes a negative, beside the original as a positive."""

from __future__ import annotations

import random
from typing import Any

from tests.training_scripts import load_script

modifiers = load_script("modifiers")

LEAVE = (
    "Every employee receives 27 days of paid annual leave per year. "
    "Unused days may be carried over."
)
TRAVEL = "Trains are booked in standard class. Flights over six hours may be booked in business."


def _qa(qid: str, question: str, context: str, answer: str) -> dict[str, Any]:
    return {
        "id": qid,
        "question": question,
        "answers": [{"text": answer, "answer_start": context.index(answer)}],
        "is_impossible": False,
    }


ARTICLE = {
    "title": "Handbook",
    "paragraphs": [
        {
            "context": LEAVE,
            "qas": [_qa("q1", "How many days of paid leave do employees get?", LEAVE, "27 days")],
        },
        {
            "context": TRAVEL,
            "qas": [
                _qa("q2", "Which class are trains booked in for jury duty?", TRAVEL, "standard"),
                _qa("q3", "When may flights be booked in what class?", TRAVEL, "six hours"),
                _qa("q4", "Which class is used at that time?", TRAVEL, "standard"),
            ],
        },
    ],
}


def test_a_trailing_phrase_that_modifies_is_kept_and_one_that_asks_is_not() -> None:
    # "in what class" asks, "at that time" points back: neither is a modifier
    assert modifiers.modifiers(ARTICLE) == ["for jury duty"]


def test_the_modified_question_is_a_negative_beside_its_original() -> None:
    rows = modifiers.pairs([ARTICLE], 10, random.Random(0))
    leave = [r for r in rows if r["sentence"].startswith("Every employee")]
    assert leave == [
        {
            "question": "How many days of paid leave do employees get for jury duty?",
            "sentence": "Every employee receives 27 days of paid annual leave per year.",
            "label": 0,
            "qid": "q1-mod",
            "impossible": True,
        },
        {
            "question": "How many days of paid leave do employees get?",
            "sentence": "Every employee receives 27 days of paid annual leave per year.",
            "label": 1,
            "qid": "q1-orig",
            "impossible": False,
        },
    ]
    # a question that already ends in the phrase's preposition is never given it again
    assert "q2-mod" not in {r["qid"] for r in rows}
    assert "When may flights be booked in what class for jury duty?" in {
        r["question"] for r in rows
    }


def test_a_modifier_the_paragraph_mentions_is_never_appended() -> None:
    mentioned = {"every", "employee", "jury", "duty"}
    question = "How many days do employees get?"
    assert modifiers.modified(question, mentioned, ["for jury duty"], random.Random(0)) is None
    assert modifiers.modified(question, set(), [], random.Random(0)) is None
