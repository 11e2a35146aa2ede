"""The answer scorer's rule-made adversarial questions (training/answer_scorer/augment.py): each
changes one attribute of an answerable question, so that its answer sentence no longer answers it.

The evaluation's adversarial questions mostly change a common word or turn one into its opposite
("a public medical what?" against "a private medical clinic"); these tests pin what each kind of
swap does to a question."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.training_scripts import load_script

augment = load_script("augment")

CONTEXT = (
    "The clinic stands in the Alps. It is a private medical clinic for wealthy patients. "
    "Visitors reach the building by cable car, and the staff keep the archive in the basement. "
    "The surgical wing opened in 1999 and the nurses work long shifts."
)


def _article(question: str, answer: str) -> dict[str, Any]:
    return {
        "title": "Clinic",
        "paragraphs": [
            {
                "context": CONTEXT,
                "qas": [
                    {
                        "id": "q1",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": CONTEXT.index(answer)}],
                        "is_impossible": False,
                    }
                ],
            }
        ],
    }


def _swapped(question: str, answer: str, kinds: tuple[str, ...], seed: int = 0) -> list[str]:
    rows = list(augment.swaps(_article(question, answer), random.Random(seed), kinds))
    assert all(r["label"] == 0 and r["impossible"] for r in rows)
    return [r["question"] for r in rows]


def test_an_attribute_becomes_its_opposite_and_the_sentence_stays_a_negative() -> None:
    question = "The clinic is a private medical what?"
    rows = list(augment.swaps(_article(question, "clinic for"), random.Random(0), ("opposite",)))
    assert [r["question"] for r in rows] in (
        ["The clinic is a public medical what?"],
        ["The clinic is not a private medical what?"],  # the negation, when drawn
    )
    assert rows[0]["sentence"] == "It is a private medical clinic for wealthy patients."


def test_a_question_is_negated_only_where_its_sentence_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(augment, "NEGATE", 1.0)
    assert _swapped("Where do visitors reach the building?", "cable car", ("opposite",)) == [
        "Where do not visitors reach the building?"
    ]
    monkeypatch.setattr(augment, "NEGATE", 0.0)
    assert _swapped("Where do visitors reach the building?", "cable car", ("opposite",)) == []


def test_a_common_word_is_swapped_for_one_of_the_article_that_ends_alike() -> None:
    question = "What kind of patients does the medical clinic serve?"
    swapped = _swapped(question, "wealthy patients", ("word",))
    assert len(swapped) == 1
    changed = set(swapped[0].rstrip("?").split()) - set(question.rstrip("?").split())
    assert changed in ({"surgical"}, {"shifts"})  # "medical" -> -al, "patients" -> -ts


def test_the_shipped_kinds_swap_only_names_and_numbers() -> None:
    assert _swapped("Where do the staff keep the archive?", "basement", ("number", "name")) == []
