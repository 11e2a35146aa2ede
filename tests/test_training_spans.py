"""The answer scorer's optional span task (training/answer_scorer/train.py --span-weight): which
tokens it is taught hold the answer. Wrong targets would teach the shared encoder to look at the
wrong words, and nothing downstream would show it but worse scores. Real packaged tokenizer."""

from __future__ import annotations

from typing import Any

from transformers import AutoTokenizer

from tests.training_scripts import load_script

train = load_script("train")

LIFE = "How much life insurance coverage does the company provide?"
ROWS: list[dict[str, Any]] = [
    {"qid": "a", "question": LIFE, "label": 1, "impossible": False,
     "sentence": "The company offers a $400,000 life insurance policy to all staff."},
    {"qid": "a", "question": LIFE, "label": 0, "impossible": False,
     "sentence": "Staff may choose their own dental plan."},
    {"qid": "b", "question": "How long is the probation period?", "label": 1, "impossible": False,
     "sentence": "New staff serve a probation period of six months."},
    {"qid": "c", "question": "Who signs the form?", "label": 1, "impossible": False,
     "sentence": "The form is signed at the end of the month."},
]  # fmt: skip
ANSWERS = {"a": ["$400,000"], "b": ["six months"], "c": ["the head of unit"]}


def targets(rows: list[dict[str, Any]]) -> tuple[Any, Any, Any, Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(train.base_model_dir())
    encoding = train.encode(tokenizer, rows, offsets=True)
    return tokenizer, encoding, *train.span_targets(encoding, rows)


def test_an_answering_sentence_points_at_its_answer_and_the_others_at_cls() -> None:
    rows = [dict(row) for row in ROWS]
    assert train.locate_answers(rows, ANSWERS) == 2  # "c"'s answer is not in its sentence
    tokenizer, encoding, starts, ends, allowed = targets(rows)
    ids = encoding["input_ids"]
    assert tokenizer.decode(ids[0][starts[0] : ends[0] + 1]) == "$ 400, 000"
    assert tokenizer.decode(ids[2][starts[2] : ends[2] + 1]) == "six months"
    assert (starts[1], ends[1]) == (0, 0)  # a sentence that does not answer: [CLS]
    assert (starts[3], ends[3]) == (train.IGNORE, train.IGNORE)  # answer not found: no span lesson
    question_tokens = encoding.sequence_ids(0).count(0)
    assert allowed[0, 0] and not allowed[0, 1 : 1 + question_tokens].any()  # never in the question
    assert allowed[0].sum() == 1 + encoding.sequence_ids(0).count(1)  # [CLS] and the sentence


def test_an_answer_cut_off_by_truncation_teaches_no_span() -> None:
    row = dict(ROWS[2], sentence="Filler words come first. " * 40 + ROWS[2]["sentence"])
    train.locate_answers([row], ANSWERS)
    _, encoding, starts, ends, _ = targets([row])
    assert encoding["input_ids"].shape[1] == train.MAX_LENGTH
    assert (starts[0], ends[0]) == (train.IGNORE, train.IGNORE)
