"""rag-eval: run a question set against a running server and report grounded-QA quality.

    rag-eval QA.jsonl [--url URL] [--collection NAME] [--json] [--split dev] [--records OUT.jsonl]

Input lines: {"id", "question", "answerable": bool, "answers": [str], "source": str|null}, and
optionally "kind" ("answerable", "adjacent" or "adversarial") and "pages" (the gold PDF pages).
Reports, overall and by answerable/unanswerable: retrieval hit@5, answer accuracy, abstention
(also by kind of unanswerable question), false abstention, the share of correct PDF answers whose
citation is on a gold page, the share of answer sentences the verifier removed, latency p50/p95.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MAX_ANSWER_WORDS = 80
_PUNCT = re.compile(r"[^\w\s]")


@dataclass
class Record:
    """One question's outcome; enough to recompute every metric at another gate threshold."""

    id: str
    answerable: bool
    kind: str
    status: str
    correct: bool
    hit_at_5: bool | None
    best_score: float
    removed: int
    kept: int
    latency_s: float
    answer: str
    page_ok: bool | None = None  # a correct answer to a question with gold pages: cited on one
    # An answerable question refused: whether a passage the refusal points to quotes a gold string
    pointed: bool | None = None

    @property
    def refused(self) -> bool:
        return self.status == "insufficient_evidence"


def normalise(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def holds_gold(text: str, gold: list[str]) -> bool:
    """A gold string inside `text`, whole words, case- and punctuation-insensitive."""
    said = f" {normalise(text)} "
    return any(f" {normalise(g)} " in said for g in gold if normalise(g))


def is_correct(answer: str, gold: list[str]) -> bool:
    """A gold string inside the answer (case- and punctuation-insensitive), answer ≤ 80 words."""
    return len(answer.split()) <= MAX_ANSWER_WORDS and holds_gold(answer, gold)


def source_in(corpus: dict[str, Any], source: str) -> str:
    """A question's source document in `corpus`: a corpus read again in another format (a twin,
    eval/twins.json: "source_suffix": ".pdf") names it with that format's suffix, so that hit@5
    and the gold-text checks find it."""
    suffix = corpus.get("source_suffix")
    return str(Path(source).with_suffix(suffix)) if suffix else source


def _sentences(answer: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", answer.strip()) if s])


def _post(client: Any, path: str, body: dict[str, Any], attempts: int = 10) -> tuple[Any, float]:
    """POST as a well-behaved client: on 429/503, wait the Retry-After the server gives and try
    again. Returns the response and the latency of the attempt that got it."""
    for attempt in range(1, attempts + 1):
        began = time.perf_counter()
        response = client.post(path, json=body)
        latency = time.perf_counter() - began
        if response.status_code not in (429, 503) or attempt == attempts:
            break
        time.sleep(min(60.0, float(response.headers.get("retry-after", "1"))))
    response.raise_for_status()
    return response, latency


def run_one(client: Any, item: dict[str, Any], collection: str | None = None) -> Record:
    where = {"collection": collection} if collection else {}
    search, _ = _post(client, "/v1/search", {"query": item["question"], "top_k": 5, **where})
    results = search.json()["results"]
    response, latency = _post(client, "/v1/ask", {"question": item["question"], **where})
    body = response.json()
    status = body["status"]
    answered = status != "insufficient_evidence"
    answerable = bool(item["answerable"])
    correct = answerable and answered and is_correct(body["answer"], list(item["answers"]))
    pages = set(item.get("pages") or [])
    return Record(
        id=str(item["id"]),
        answerable=answerable,
        kind=str(item.get("kind") or ("answerable" if answerable else "unanswerable")),
        status=status,
        page_ok=bool(pages & {c.get("page") for c in body["citations"]})
        if pages and correct
        else None,
        correct=correct,
        pointed=any(
            holds_gold(r["quote"], list(item["answers"])) for r in body.get("related") or []
        )
        if answerable and not answered
        else None,
        hit_at_5=(item["source"] in {r["source"] for r in results}) if answerable else None,
        best_score=max((r["score"] for r in results), default=-1.0),
        removed=int(body.get("removed_sentences", 0)),
        kept=_sentences(body["answer"]) if status == "answered" else 0,
        latency_s=latency,
        answer=body["answer"],
    )


def percent(values: list[bool]) -> float | None:
    """The share of true values, in percent to one decimal; None when there are none."""
    return round(100.0 * sum(values) / len(values), 1) if values else None


def interval(values: list[bool]) -> list[float] | None:
    """The Wilson score interval of a rate, in percent: how far a figure measured on this many
    questions can be from the rate on all such questions. Sixty questions leave about +-12
    points around 50%, so a lever that moves one corpus by two points has not shown anything."""
    if not values:
        return None
    from scipy.stats import binomtest

    ci = binomtest(sum(values), len(values)).proportion_ci(0.95, method="wilson")
    return [round(100.0 * float(ci.low), 1), round(100.0 * float(ci.high), 1)]


def mean_interval(counts: list[tuple[int, int]]) -> tuple[float | None, list[float] | None]:
    """The unweighted mean of several independent rates, `(hits, questions)` each, in percent,
    and its 95% interval: a normal approximation whose variance takes each rate with one hit and
    one miss added (Agresti-Caffo), so rates all at 100% still leave the interval a width. Used
    for a mean over corpora that weighs each corpus the same."""
    counts = [(k, n) for k, n in counts if n]
    if not counts:
        return None, None
    mean = statistics.fmean(k / n for k, n in counts)
    variance = sum((k + 1) * (n - k + 1) / (n + 2) ** 3 for k, n in counts) / len(counts) ** 2
    half = 1.96 * math.sqrt(variance)
    low, high = max(0.0, mean - half), min(1.0, mean + half)
    return round(100.0 * mean, 1), [round(100.0 * low, 1), round(100.0 * high, 1)]


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summarise(records: list[Record]) -> dict[str, Any]:
    def block(rs: list[Record]) -> dict[str, Any]:
        answerable = [r for r in rs if r.answerable]
        removed = sum(r.removed for r in rs)
        rates = {
            "hit_at_5": [bool(r.hit_at_5) for r in answerable],
            "accuracy": [r.correct for r in answerable],
            "abstention": [r.refused for r in rs if not r.answerable],
            "abstention_adjacent": [r.refused for r in rs if r.kind == "adjacent"],
            "abstention_adversarial": [r.refused for r in rs if r.kind == "adversarial"],
            "page_ok": [r.page_ok for r in rs if r.page_ok is not None],
            "false_abstention": [r.refused for r in answerable],
            # A refusal that points to the passage holding the answer costs its user less.
            "refusal_points_to_answer": [r.pointed for r in rs if r.pointed is not None],
        }
        return {
            "questions": len(rs),
            **{key: percent(values) for key, values in rates.items()},
            "removed_share": round(100.0 * removed / max(1, removed + sum(r.kept for r in rs)), 1),
            "extractive": percent([r.status == "extractive" for r in rs]),
            # The writing path: how often the model's own sentences survived verification and
            # became the answer, and how many of those answers were wrong (an unanswerable
            # question answered, or an answer without a gold string).
            "written": percent([r.status == "answered" for r in rs]),
            "written_wrong": percent([not r.correct for r in rs if r.status == "answered"]),
            "latency_p50_s": _quantile([r.latency_s for r in rs], 0.5),
            "latency_p95_s": _quantile([r.latency_s for r in rs], 0.95),
            "latency_mean_s": round(statistics.fmean([r.latency_s for r in rs]), 3) if rs else None,
            "interval_95": {key: interval(values) for key, values in rates.items()},
        }

    return {
        "overall": block(records),
        "answerable": block([r for r in records if r.answerable]),
        "unanswerable": block([r for r in records if not r.answerable]),
    }


def _table(summary: dict[str, Any]) -> str:
    """One row a metric; a rate carries its 95% interval: "46.7 [35.8-57.8]"."""
    parts = ("overall", "answerable", "unanswerable")
    keys = [k for k in summary["overall"] if k != "interval_95"]
    lines = ["| metric | overall | answerable | unanswerable |", "|---|---|---|---|"]
    for key in keys:
        cells = []
        for part in parts:
            value, ci = summary[part][key], summary[part]["interval_95"].get(key)
            cells.append(
                "–" if value is None else f"{value} [{ci[0]}-{ci[1]}]" if ci else str(value)
            )
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rag-eval", description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path, help="question set (JSON lines)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--split", help="only questions whose 'split' field equals this")
    parser.add_argument("--records", type=Path, help="write one JSON line per question here")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--api-key", help="bearer token, when the server requires one")
    parser.add_argument("--collection", help="ask this collection (default: the server's)")
    args = parser.parse_args(argv)

    import httpx

    items = [json.loads(line) for line in args.qa.read_text().splitlines() if line.strip()]
    if args.split:
        items = [i for i in items if i.get("split") == args.split]
    if not items:
        parser.error("no questions to run")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    records: list[Record] = []
    with httpx.Client(base_url=args.url, timeout=args.timeout, headers=headers) as client:
        for n, item in enumerate(items, 1):
            records.append(run_one(client, item, args.collection))
            if not args.json:
                print(f"\r{n}/{len(items)}", end="", file=sys.stderr, flush=True)
    if not args.json:
        print(file=sys.stderr)
    if args.records:
        args.records.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    summary = summarise(records)
    print(json.dumps(summary) if args.json else _table(summary))


if __name__ == "__main__":
    main()
