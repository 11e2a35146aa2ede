"""Shared pieces of the answer-scorer pipeline: paths, SQuAD loading, title splits and metrics.

Kept free of torch so that prepare/export and the metric code stay importable and cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# SQuAD and the generated pairs stay out of git (ignored); ANSWER_SCORER_DATA moves them.
DATA = Path(
    os.environ.get("ANSWER_SCORER_DATA", str(REPO / "training" / "answer_scorer" / ".data"))
)
SQUAD_TRAIN = DATA / "train-v2.0.json"
EVAL_TITLES = REPO / "eval" / "corpora" / "encyclopedic" / "titles.txt"
MODEL_OUT = REPO / "rag_server" / "models" / "answer_scorer"
SEED = 13
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def load_squad(path: Path) -> list[dict[str, Any]]:
    """The articles of a SQuAD 2.0 file (refuses anything that is not version v2.0)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != "v2.0":
        raise SystemExit(f"{path}: not a SQuAD 2.0 file (version={data.get('version')!r})")
    articles: list[dict[str, Any]] = data["data"]
    return articles


def sentence_at(spans: list[tuple[int, int]], start: int, end: int) -> int | None:
    """Index of the sentence holding [start, end); None when it falls between or across sentences."""
    for i, (lo, hi) in enumerate(spans):
        if lo <= start < hi:
            return i if end <= hi else None
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_titles(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def val_titles(
    articles: Sequence[dict[str, Any]], excluded: set[str], n: int, seed: int
) -> list[str]:
    """A seeded sample of whole articles: validating on unseen articles, as the server will face."""
    pool = sorted(a["title"] for a in articles if a["title"] not in excluded)
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def whole_questions(paths: Sequence[Path], budget: int, seed: int) -> list[dict[str, Any]]:
    """Whole questions of earlier pairs (a positive with its negatives together), shuffled, up to
    about `budget` rows: the sample a later fine-tune mixes in so it keeps what SQuAD taught."""
    by_question: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for row in read_jsonl(path):
            by_question.setdefault(row["qid"], []).append(row)
    order = sorted(by_question)
    random.Random(seed).shuffle(order)
    rows: list[dict[str, Any]] = []
    for qid in order:
        if len(rows) >= budget:
            break
        rows.extend(by_question[qid])
    return rows


def pair_row(
    qid: str, question: str, sentence: str, label: int, impossible: bool = False
) -> dict[str, Any]:
    """One training pair as every pair file holds it (train.py reads these keys)."""
    return {
        "question": question,
        "sentence": sentence,
        "label": label,
        "qid": qid,
        "impossible": impossible,
    }


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Rank-based ROC-AUC (ties count half), so no scikit-learn is needed."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def question_metrics(rows: Sequence[dict[str, Any]], probs: Sequence[float]) -> dict[str, Any]:
    """Pair AUC, top-1 sentence accuracy and the answerable/unanswerable trade-off per threshold.

    Validation rows carry every sentence of the question's paragraph, so a question's max score is
    what the server would see when gating on that paragraph.
    """
    by_q: dict[str, list[tuple[float, int, bool]]] = {}
    for row, p in zip(rows, probs, strict=True):
        by_q.setdefault(row["qid"], []).append((p, int(row["label"]), bool(row["impossible"])))
    answerable = [v for v in by_q.values() if not v[0][2]]
    unanswerable = [v for v in by_q.values() if v[0][2]]
    top1 = sum(max(v)[1] == 1 for v in answerable) / max(1, len(answerable))
    table = []
    for t in THRESHOLDS:
        kept = sum(max(p for p, _, _ in v) >= t for v in answerable) / max(1, len(answerable))
        refused = sum(max(p for p, _, _ in v) < t for v in unanswerable) / max(1, len(unanswerable))
        table.append(
            {
                "t": t,
                "answerable_max_ge_t": round(kept, 4),
                "unanswerable_max_lt_t": round(refused, 4),
            }
        )
    return {
        "pairs": len(rows),
        "questions_answerable": len(answerable),
        "questions_unanswerable": len(unanswerable),
        "pair_roc_auc": round(roc_auc(list(probs), [int(r["label"]) for r in rows]), 4),
        "top1_accuracy_answerable": round(top1, 4),
        "thresholds": table,
    }
