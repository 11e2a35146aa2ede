"""Fine-tune the answer model on the evaluation corpora, leaving one corpus out each time, and read
every corpus with the model that never saw it.

    .venv/bin/python bench/grounding_suite.py --export-pairs DIR/pairs
    .venv/bin/python training/answer_scorer/loo.py --work DIR [--init CHECKPOINT] [--final]
    .venv/bin/python bench/grounding_suite.py --reuse --logits DIR/oof_logits.json

Why: SQuAD teaches "answers" against "is about" on encyclopedic prose with questions written from
the paragraph; staff ask about policies and manuals in their own words. The evaluation corpora
(public, licensed, eval/corpora/*.SOURCE.md) have questions of that kind. To report a corpus
honestly, its logits come from a model trained without it; the combiner and threshold are then
fitted on the other corpora's held-out logits (grounding_suite.py leaves one corpus out again).

Each fold starts from the SQuAD-trained checkpoint (--init) and sees the other corpora's pairs
plus a sample of SQuAD pairs, so the SQuAD lesson (adversarial unanswerables) is kept. --final
also trains on every corpus (DIR/all), the model export.py ships.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, SEED, read_jsonl, whole_questions
from train import MAX_LENGTH

HERE = Path(__file__).resolve().parent


def squad_sample(path: Path, pairs: int, out: Path) -> Path:
    """Whole SQuAD questions (a positive with its negatives) up to about `pairs` rows."""
    rows = whole_questions([path], pairs, SEED)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def train(work: Path, name: str, pair_files: list[Path], init: Path, epochs: int) -> Path:
    """One fine-tune in a child process (train.py), skipped when its checkpoint exists."""
    out = work / name
    if (out / "train_meta.json").exists():
        return out
    subprocess.run(
        [sys.executable, str(HERE / "train.py"), "--pairs", *map(str, pair_files),
         "--init", str(init), "--out", str(out), "--max-pairs", "1000000",
         "--epochs", str(epochs), "--lr", "2e-5", "--threads", "1"],
        check=True,
    )  # fmt: skip
    return out


@torch.no_grad()
def logits(model_dir: Path, candidates: Path, batch: int = 64) -> dict[str, list[float]]:
    """The model's logit for every candidate sentence of every question in `candidates`."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out: dict[str, list[float]] = {}
    for item in read_jsonl(candidates):
        values: list[float] = []
        sentences = item["sentences"]
        for i in range(0, len(sentences), batch):
            chunk = sentences[i : i + batch]
            encoded = tokenizer(
                [item["question"]] * len(chunk),
                chunk,
                truncation="longest_first",
                max_length=MAX_LENGTH,
                padding=True,
                return_tensors="pt",
            )
            values += model(**encoded).logits.view(-1).tolist()
        out[item["qid"]] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="pairs/ inside; models go here")
    parser.add_argument("--init", type=Path, default=DATA / "model", help="SQuAD-trained model")
    parser.add_argument("--squad-pairs", type=Path, default=DATA / "train_pairs.jsonl")
    parser.add_argument("--squad-sample", type=int, default=1200, help="SQuAD rows per fold")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--final", action="store_true", help="also train on every corpus")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = args.work / "pairs"
    corpora = sorted(p.name.removesuffix(".pairs.jsonl") for p in pairs.glob("*.pairs.jsonl"))
    squad = squad_sample(args.squad_pairs, args.squad_sample, args.work / "squad-sample.jsonl")
    result = args.work / "oof_logits.json"
    oof: dict[str, list[float]] = json.loads(result.read_text()) if result.exists() else {}
    for held in corpora:
        files = [pairs / f"{c}.pairs.jsonl" for c in corpora if c != held] + [squad]
        model = train(args.work, f"without-{held}", files, args.init, args.epochs)
        oof.update(logits(model, pairs / f"{held}.candidates.jsonl"))
        result.write_text(json.dumps(oof))
        print(f"{held}: held-out logits written", file=sys.stderr)
    if args.final:
        files = [pairs / f"{c}.pairs.jsonl" for c in corpora] + [squad]
        model = train(args.work, "all", files, args.init, args.epochs)
        (model / "corpora.json").write_text(json.dumps({"corpora": corpora}) + "\n")


if __name__ == "__main__":
    main()
