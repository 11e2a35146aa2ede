#!/usr/bin/env python3
"""Check the Debian Policy evaluation set (eval/debian-policy.jsonl).

Validates keys and types, counts, ids and splits, and that every gold answer of
an answerable question appears in the main text of its source chapter
(case-insensitive, whitespace-normalised). Prints a summary; exits 1 on any problem.

Main text comes from the server's own loader (ingest.loaders), so gold answers are
checked against exactly what gets indexed.

Usage (from the repository, with the project installed):
    .venv/bin/python eval/check_devset.py [--data FILE] [--corpus DIR]
The corpus folder defaults to $DEBIAN_POLICY_HTML or
/usr/share/doc/debian-policy/policy.html (from Debian's debian-policy package).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "debian-policy.jsonl"
DEFAULT_CORPUS = Path(
    os.environ.get("DEBIAN_POLICY_HTML", "/usr/share/doc/debian-policy/policy.html")
)
EXCLUDED = {"search.html", "genindex.html"}

KEYS = {"id", "question", "answerable", "answers", "source", "split"}
SPLITS = {"dev", "test"}
MIN_TOTAL = 60
MIN_UNANSWERABLE = 20
MAX_PER_SOURCE = 8
MAX_ANSWERS = 3
MAX_ANSWER_WORDS = 6
ID_RE = re.compile(r"^dp-\d{3}$")


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def main_text(path: Path) -> str:
    """The text the server indexes for this file: the project's own loader, not a copy of it."""
    from ingest.loaders import load

    return load(path, path.read_bytes()).text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args(argv)

    problems: list[str] = []
    rows: list[dict] = []
    if not args.data.is_file():
        print(f"FAIL: data file not found: {args.data}")
        return 1
    for n, line in enumerate(args.data.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            problems.append(f"line {n}: empty line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: invalid JSON: {exc}")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {n}: not a JSON object")
            continue
        rows.append(row)

    corpus_files = (
        {p.name for p in args.corpus.glob("*.html") if p.name not in EXCLUDED}
        if args.corpus.is_dir()
        else set()
    )
    if not corpus_files:
        problems.append(f"corpus folder has no HTML chapters: {args.corpus}")

    seen_ids: Counter = Counter()
    seen_questions: Counter = Counter()
    valid: list[dict] = []
    for row in rows:
        rid = row.get("id", "?")
        where = f"{rid}"
        keys = set(row)
        if keys != KEYS:
            missing, extra = KEYS - keys, keys - KEYS
            problems.append(
                f"{where}: keys differ (missing {sorted(missing)}, extra {sorted(extra)})"
            )
            continue
        ok = True
        if not isinstance(row["id"], str) or not ID_RE.match(row["id"]):
            problems.append(f"{where}: id must look like dp-001")
            ok = False
        if not isinstance(row["question"], str) or len(row["question"].strip()) < 10:
            problems.append(f"{where}: question must be a non-trivial string")
            ok = False
        if not isinstance(row["answerable"], bool):
            problems.append(f"{where}: answerable must be a bool")
            ok = False
        if not isinstance(row["answers"], list) or not all(
            isinstance(a, str) for a in row["answers"]
        ):
            problems.append(f"{where}: answers must be a list of strings")
            ok = False
        if row["source"] is not None and not isinstance(row["source"], str):
            problems.append(f"{where}: source must be a string or null")
            ok = False
        if row["split"] not in SPLITS:
            problems.append(f"{where}: split must be one of {sorted(SPLITS)}")
            ok = False
        if not ok:
            continue
        seen_ids[row["id"]] += 1
        seen_questions[normalise(row["question"])] += 1
        if row["answerable"]:
            if not 1 <= len(row["answers"]) <= MAX_ANSWERS:
                problems.append(f"{where}: answerable questions need 1-{MAX_ANSWERS} answers")
            for a in row["answers"]:
                words = len(a.split())
                if not a.strip() or words > MAX_ANSWER_WORDS:
                    problems.append(
                        f"{where}: gold answer {a!r} must be 1-{MAX_ANSWER_WORDS} words"
                    )
            if row["source"] is None:
                problems.append(f"{where}: answerable question needs a source")
            elif corpus_files and row["source"] not in corpus_files:
                problems.append(
                    f"{where}: source {row['source']!r} is not a top-level chapter of the corpus"
                )
        else:
            if row["answers"]:
                problems.append(f"{where}: unanswerable question must have answers []")
            if row["source"] is not None:
                problems.append(f"{where}: unanswerable question must have source null")
        valid.append(row)

    for rid, c in seen_ids.items():
        if c > 1:
            problems.append(f"{rid}: duplicate id ({c} times)")
    for q, c in seen_questions.items():
        if c > 1:
            problems.append(f"duplicate question ({c} times): {q[:70]}")

    answerable = [r for r in valid if r["answerable"]]
    unanswerable = [r for r in valid if not r["answerable"]]
    if len(valid) < MIN_TOTAL:
        problems.append(f"only {len(valid)} valid questions (need >= {MIN_TOTAL})")
    if len(unanswerable) < MIN_UNANSWERABLE:
        problems.append(
            f"only {len(unanswerable)} unanswerable questions (need >= {MIN_UNANSWERABLE})"
        )

    per_source = Counter(r["source"] for r in answerable)
    for src, c in per_source.items():
        if c > MAX_PER_SOURCE:
            problems.append(f"{src}: {c} questions (at most {MAX_PER_SOURCE} per file)")

    # gold answers must appear verbatim in the source's main text
    texts: dict[str, str] = {}
    gold_checked = gold_missing = 0
    for r in answerable:
        src = r["source"]
        if src not in corpus_files:
            continue
        if src not in texts:
            texts[src] = normalise(main_text(args.corpus / src))
        for a in r["answers"]:
            gold_checked += 1
            if normalise(a) not in texts[src]:
                gold_missing += 1
                problems.append(f"{r['id']}: gold answer {a!r} not found in main text of {src}")

    # summary
    split_kind = Counter(
        (r["split"], "answerable" if r["answerable"] else "unanswerable") for r in valid
    )
    print(f"data:    {args.data}")
    print(f"corpus:  {args.corpus} ({len(corpus_files)} chapter files)")
    print(
        f"total:   {len(valid)} valid of {len(rows)} rows; answerable {len(answerable)}, unanswerable {len(unanswerable)}"
    )
    for split in sorted(SPLITS):
        print(
            f"  {split:5s} answerable {split_kind[(split, 'answerable')]:3d}   "
            f"unanswerable {split_kind[(split, 'unanswerable')]:3d}"
        )
    print("answerable questions per source:")
    for src, c in sorted(per_source.items()):
        print(f"  {src:32s} {c}")
    print(
        f"gold answers: {gold_checked} checked, {gold_checked - gold_missing} found, {gold_missing} missing"
    )
    if problems:
        print(f"\nFAIL: {len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
