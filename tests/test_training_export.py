"""The answer scorer's validation (training/answer_scorer/export.py) scores pairs as the server does:
through `AnswerScorer`, each pair alone. Its figures used to come from padded batches of 64, where
the int8 model's scores moved with their neighbours, so the card described another model than the
one answering. Real packaged model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

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


def test_the_span_reading_is_the_best_sentence_span_minus_no_answer(tmp_path: Path) -> None:
    """`export.py --span` puts the span head's null-score difference in the graph, as the one
    `logits` output the server reads. Checked against a plain loop over the sentence's tokens
    (the candidates `train.span_targets` trains on), padded in torch and alone through the
    server's `AnswerScorer` reading the exported ONNX file. Real packaged encoder, seeded head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    train = load_script("train")
    base = train.base_model_dir()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).eval()
    head = train.new_span_head(model.config.hidden_size)
    model.save_pretrained(tmp_path)
    torch.save(head.state_dict(), tmp_path / train.SPAN_HEAD_FILE)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train.save_tokenizer(tokenizer, base, tmp_path)
    long = " ".join(["The office"] + ["and visitors"] * 30)
    rows = [*ROWS[:2], {**ROWS[3], "sentence": long}]

    encoding = train.encode(tokenizer, rows)
    inputs = (encoding["input_ids"], encoding["attention_mask"], encoding["token_type_ids"])
    with torch.no_grad():
        hidden = model(**encoding, output_hidden_states=True).hidden_states[-1]
        boundary = head(hidden)
        got = export.reading(tmp_path, span=True)(*inputs).view(-1)
    mask = export.sentence_tokens(*inputs, tokenizer.sep_token_id)
    expected = []
    for i in range(len(rows)):
        sentence = [t for t, s in enumerate(encoding.sequence_ids(i)) if s == 1]
        assert mask[i].nonzero().view(-1).tolist() == sentence  # padded rows included
        best = max(
            float(boundary[i, a, 0] + boundary[i, b, 1])
            for a in sentence
            for b in sentence
            if 0 <= b - a < export.MAX_ANSWER_TOKENS
        )
        expected.append(best - float(boundary[i, 0, 0] + boundary[i, 0, 1]))
    assert got.tolist() == pytest.approx(expected, abs=1e-4)
    assert len(encoding.sequence_ids(2)) > export.MAX_ANSWER_TOKENS + 10  # the band is exercised

    onnx_file = tmp_path / "model.onnx"
    export.export_onnx(tmp_path, onnx_file, span=True)
    scorer = AnswerScorer.from_files(onnx_file, tmp_path / "tokenizer.json", "span", workers=1)
    alone = [scorer.logits(r["question"], [r["sentence"]])[0] for r in rows]
    assert alone == pytest.approx(expected, abs=1e-3)
