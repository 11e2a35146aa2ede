"""Adversarial questions made by rule, the SQuAD 2.0 recipe automated: take an answerable question,
swap one name or number it shares with its answer sentence for another of the same article, and
pair the new question with that sentence as a negative.

Why: the SQuAD 2.0 train data obtainable here holds 160 unanswerable questions, too few for the
model to learn that "what year did Beyonce first appear on the Heat Rush 100 list?" is not
answered by the sentence about the Time 100 list. A swap keeps the question on topic and fluent
and changes exactly one attribute, which is the distinction the answer scorer lacks. Some swaps leave a question the
sentence still answers (a synonym, a second mention); they are few and counted as noise.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DATA,
    EVAL_TITLES,
    SEED,
    SQUAD_TRAIN,
    load_squad,
    read_titles,
    sentence_at,
    write_jsonl,
)

from rag_server.grounding import sentence_spans

_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?![\w])|(?<![\w.])\d(?![\w.])")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})*\b")


def _kinds(text: str) -> dict[str, set[str]]:
    return {"number": set(_NUMBER.findall(text)), "name": set(_NAME.findall(text))}


def swaps(article: dict[str, Any], rng: random.Random) -> Iterator[dict[str, Any]]:
    """One swapped question per answerable question that has something to swap."""
    pool = {"number": set[str](), "name": set[str]()}
    for para in article["paragraphs"]:
        for kind, found in _kinds(para["context"]).items():
            pool[kind] |= found
    for para in article["paragraphs"]:
        context = para["context"]
        spans = sentence_spans(context)
        for qa in para["qas"]:
            if qa["is_impossible"] or not qa["answers"]:
                continue
            start = int(qa["answers"][0]["answer_start"])
            hit = sentence_at(spans, start, start + 1)
            if hit is None:
                continue
            lo, hi = spans[hit]
            sentence = context[lo:hi]
            question = qa["question"].strip()
            asked = _kinds(question)
            choices = []
            for kind, found in _kinds(sentence).items():
                for token in sorted(asked[kind] & found):
                    if kind == "name" and question.startswith(token):
                        continue  # a capitalised first word is not a name
                    others = sorted(pool[kind] - found - asked[kind] - {token})
                    if kind == "number" and token.isdigit() and len(token) == 4:
                        others = [o for o in others if o.isdigit() and len(o) == 4]  # years
                    if others:
                        choices.append((token, others))
            if not choices:
                continue
            token, others = rng.choice(choices)
            swapped = re.sub(rf"(?<!\w){re.escape(token)}(?!\w)", rng.choice(others), question)
            if swapped == question:
                continue
            yield {
                "question": swapped,
                "sentence": sentence,
                "label": 0,
                "qid": f"{qa['id']}-swap",
                "impossible": True,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD_TRAIN)
    parser.add_argument("--eval-titles", type=Path, default=EVAL_TITLES)
    parser.add_argument("--val-titles", type=Path, default=DATA / "val_titles.txt")
    parser.add_argument("--out", type=Path, default=DATA / "swapped_pairs.jsonl")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    excluded = set(read_titles(args.eval_titles)) | set(read_titles(args.val_titles))
    rng = random.Random(args.seed)
    rows = [
        row
        for article in load_squad(args.squad)
        if article["title"] not in excluded
        for row in swaps(article, rng)
    ]
    print(f"{write_jsonl(args.out, rows)} swapped questions -> {args.out}")


if __name__ == "__main__":
    main()
