"""The answer scorer's training pairs: which sentences an answerable question is taught to refuse.

The scorer used to rank the sentence that introduces a topic above the one stating the fact;
the hard negatives put exactly those sentences against the answer during training."""

from __future__ import annotations

import random

from tests.training_scripts import load_script

prepare = load_script("prepare")


PARAGRAPH = [
    "The Leave Bank is run by the personnel office.",  # 0: shares "leave bank" with the question
    "Staff have asked about donations for years.",  # 1: random filler
    "Donations to the Leave Bank open each January.",  # 2: the topic sentence before the answer
    "Each member may donate up to 40 hours a year.",  # 3: the answer
    "Up to 40 hours is also the cap on receiving.",  # 4: holds the answer text too
    "The bank closed once, in 2013.",  # 5: random filler
]
QUESTION = "How many hours can I donate to the leave bank?"


def test_the_sentence_before_the_answer_and_the_closest_one_come_first() -> None:
    picked = prepare.hard_negatives(QUESTION, PARAGRAPH, 3, "40 hours", 2, random.Random(0))
    assert picked == [2, 0]
    more = prepare.hard_negatives(QUESTION, PARAGRAPH, 3, "40 hours", 3, random.Random(0))
    assert more[:2] == [2, 0] and more[2] in (1, 5)  # then a random one
    assert 4 not in more  # a sentence holding the answer text is never a negative


def test_an_answerable_question_gets_its_answer_then_its_hard_negatives() -> None:
    context = " ".join(PARAGRAPH)
    article = {
        "title": "Leave",
        "paragraphs": [
            {
                "context": context,
                "qas": [
                    {
                        "id": "q1",
                        "question": QUESTION,
                        "answers": [
                            {"text": "40 hours", "answer_start": context.index("40 hours")}
                        ],
                        "is_impossible": False,
                    }
                ],
            }
        ],
    }
    rows = list(
        prepare.article_pairs(article, random.Random(0), full=False, negatives=2, hard=True)
    )
    assert [(r["sentence"], r["label"]) for r in rows] == [
        (PARAGRAPH[3], 1),
        (PARAGRAPH[2], 0),
        (PARAGRAPH[0], 0),
    ]  # no other paragraph in this article to draw one more negative from
