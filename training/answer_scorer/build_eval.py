"""Build the encyclopedic eval corpus and question set from SQuAD 2.0 train (never the dev split).

Why from train: the dev split is reserved. Seven articles are picked deterministically (one per
stratum of the article list, skipping the first 50, each with >= 8 unanswerable questions) so the
topics spread; they are then excluded from the answer scorer's training data by prepare.py.
Adjacent questions (plausible, on-topic, unanswered by the article) are written by hand in a
JSON list [{"question", "source"}] and checked here only for their source file existing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SEED, SQUAD_TRAIN, load_squad, sha256

OUT = REPO / "eval" / "corpora" / "encyclopedic"
QUESTIONS = REPO / "eval" / "encyclopedic.jsonl"


def pick_titles(
    articles: list[dict[str, Any]], n: int, skip: int, seed: int
) -> list[dict[str, Any]]:
    pool = [
        a
        for a in articles[skip:]
        if sum(q["is_impossible"] for p in a["paragraphs"] for q in p["qas"]) >= 8
    ]
    rng = random.Random(seed)
    strata = [pool[i * len(pool) // n : (i + 1) * len(pool) // n] for i in range(n)]
    return [rng.choice(stratum) for stratum in strata]


def file_name(title: str) -> str:
    return title.replace("/", "_") + ".md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD_TRAIN)
    parser.add_argument("--adjacent", type=Path, help="hand-written adjacent questions (JSON list)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    chosen = pick_titles(load_squad(args.squad), 7, 50, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    answerable, impossible = [], []
    for article in chosen:
        title = article["title"]
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (OUT / file_name(title)).write_text(
            f"# {title.replace('_', ' ')}\n\n{text}\n", encoding="utf-8"
        )
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if qa["is_impossible"]:
                    impossible.append((qa["question"].strip(), title))
                    continue
                texts = list(dict.fromkeys(a["text"].strip() for a in qa["answers"]))[:3]
                if all(len(t.split()) <= 6 for t in texts):
                    answerable.append((qa["question"].strip(), title, texts))
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    for q, title, texts in rng.sample(answerable, 44):
        rows.append(
            {
                "question": q,
                "answerable": True,
                "kind": "answerable",
                "answers": texts,
                "source": file_name(title),
            }
        )
    for q, title in rng.sample(impossible, 22):
        rows.append(
            {
                "question": q,
                "answerable": False,
                "kind": "adversarial",
                "answers": [],
                "source": file_name(title),
            }
        )
    if args.adjacent:
        for item in json.loads(args.adjacent.read_text(encoding="utf-8")):
            assert (OUT / item["source"]).exists(), item
            rows.append(
                {
                    "question": item["question"],
                    "answerable": False,
                    "kind": "adjacent",
                    "answers": [],
                    "source": item["source"],
                }
            )
    with QUESTIONS.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(rows, 1):
            ordered = {"id": f"en-{i:03d}", **row, "split": "dev" if i % 2 else "test"}
            handle.write(json.dumps(ordered, ensure_ascii=False) + "\n")
    (OUT / "titles.txt").write_text("".join(a["title"] + "\n" for a in chosen), encoding="utf-8")
    print(
        f"{len(rows)} questions; titles: {[a['title'] for a in chosen]}; sha256 {sha256(args.squad)}"
    )


if __name__ == "__main__":
    main()
