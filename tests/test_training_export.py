"""The answer scorer's validation (training/answer_scorer/export.py) scores pairs as the server does:
through `AnswerScorer`, each pair alone. Its figures used to come from padded batches of 64, where
the int8 model's scores moved with their neighbours, so the card described another model than the
one answering. Real packaged model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rag_server.answer_scorer import PACKAGED, AnswerScorer
from tests.training_scripts import load_script

export = load_script("export")

LIFE = "How much life insurance coverage does the company provide?"
DOGS = "Can I bring my dog to the office?"
ROWS = [
    {"qid": "a", "question": LIFE, "impossible": False, "label": 1,
     "sentence": "The company offers a $400,000 life insurance policy to all staff."},
    {"qid": "b", "question": DOGS, "impossible": True, "label": 0,
     "sentence": "Cats are welcome in the office on Fridays."},
    {"qid": "a", "question": LIFE, "impossible": False, "label": 0,
     "sentence": "Life insurance is a contract between a policyholder and an insurer."},
    {"qid": "b", "question": DOGS, "impossible": True, "label": 0,
     "sentence": "The office is closed on public holidays, and visitors sign in at reception."},
    {"qid": "a", "question": LIFE, "impossible": False, "label": 0,
     "sentence": "Staff may choose their own dental plan."},
]  # fmt: skip


def test_validation_scores_each_question_as_the_server_does() -> None:
    scorer = AnswerScorer.load()
    probs = export.score(scorer, ROWS)
    for qid in ("a", "b"):
        rows = [(i, r) for i, r in enumerate(ROWS) if r["qid"] == qid]
        server = scorer.score(rows[0][1]["question"], [r["sentence"] for _, r in rows])
        assert [probs[i] for i, _ in rows] == server
    assert max(probs[i] for i in (0, 2, 4)) == probs[0]  # the answer ranks first


def test_revalidate_rewrites_the_shipped_figures_only(tmp_path: Path) -> None:
    out = tmp_path / "answer_scorer"
    shutil.copytree(PACKAGED, out)
    val = tmp_path / "val_pairs.jsonl"
    val.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    before = json.loads((out / "card.json").read_text(encoding="utf-8"))
    export.revalidate(out, val)
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    shipped = card["shipped"]
    figures = card["validation"][shipped]
    assert (figures["pairs"], figures["questions_answerable"]) == (5, 1)
    assert figures["questions_unanswerable"] == 1
    assert figures["top1_accuracy_answerable"] == 1.0
    assert figures["file_bytes"] == before["validation"][shipped]["file_bytes"]  # kept
    assert "revalidated" in figures["measured"]
    assert card["inference"]["runs"] == export.RUNS
    others = {k: v for k, v in card["validation"].items() if k != shipped}
    assert others == {k: v for k, v in before["validation"].items() if k != shipped}
    assert (out / "model.onnx").read_bytes() == (PACKAGED / "model.onnx").read_bytes()
