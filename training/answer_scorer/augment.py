"""Adversarial questions made by rule, the SQuAD 2.0 recipe automated: take an answerable question,
swap one name or number it shares with its answer sentence for another of the same article, and
pair the new question with that sentence as a negative. `--kinds` adds common words and
opposites (measured, not shipped: docs/evaluation.md).

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
from collections.abc import Callable, Iterator
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

from rag_server.grounding import STOPWORDS, sentence_spans

_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?![\w])|(?<![\w.])\d(?![\w.])")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})*\b")
_WORD = re.compile(r"(?<![\w-])[a-z]{4,}(?![\w-])")
KINDS = ("number", "name", "word", "opposite")
SHIPPED_KINDS = ("number", "name")  # what the shipped model was trained with
_PAIRS = """left right  more less  most least  public private  first last  before after  maximum
    minimum  increase decrease  increased decreased  higher lower  highest lowest  larger smaller
    largest smallest  earlier later  earliest latest  inside outside  internal external  import
    export  input output  north south  east west  northern southern  eastern western  male female
    men women  win lose  won lost  positive negative  start end  open closed  permanent temporary
    required optional  allowed forbidden  legal illegal  possible impossible  successful
    unsuccessful  accepted rejected  above below  over under  older newer  oldest newest  primary
    secondary  single double  true false  enabled disabled  added removed  included excluded  same
    different  longer shorter  longest shortest  strong weak  rich poor  hot cold  high low  top
    bottom  front back  ancient modern  domestic foreign  urban rural  major minor  heavy light
    faster slower  fastest slowest  rise fall  rose fell  bought sold  buy sell  summer winter
    morning evening  paid unpaid  agree disagree  supported opposed  always never  full partial
    inner outer  upper lower  native foreign  official unofficial  common rare  best worst
    better worse  success failure  legally illegally  directly indirectly"""
_WORDS = _PAIRS.split()
# "lower" and "foreign" have two opposites each (higher/upper, domestic/native): never swapped.
OPPOSITES = {a: b for a, b in zip(_WORDS[::2], _WORDS[1::2], strict=True)} | {
    b: a for a, b in zip(_WORDS[::2], _WORDS[1::2], strict=True) if b not in ("lower", "foreign")
}
_AUXILIARY = re.compile(
    r"\b(is|are|was|were|did|does|do|can|could|will|would|should|has|have|had|must)\b"
)
NEGATE = 0.3
_NEGATED = re.compile(r"\b(not|never|no|none|nor)\b|n't\b", re.IGNORECASE)


_FINDERS: dict[str, Callable[[str], set[str]]] = {
    "number": lambda text: set(_NUMBER.findall(text)),
    "name": lambda text: set(_NAME.findall(text)),
    "word": lambda text: {w for w in _WORD.findall(text) if w not in STOPWORDS},
    "opposite": lambda text: {w for w in re.findall(r"[a-z]+", text) if w in OPPOSITES},
}


def _kinds(text: str, kinds: tuple[str, ...]) -> dict[str, set[str]]:
    return {k: _FINDERS[k](text) for k in kinds}


def _alike(token: str, other: str) -> bool:
    """A replacement common word keeps the question fluent when it ends the same way (a rough
    part of speech: -ing, -ed, -s, -tion, -al...)."""
    return token[-2:] == other[-2:]


def swaps(
    article: dict[str, Any], rng: random.Random, kinds: tuple[str, ...] = SHIPPED_KINDS
) -> Iterator[dict[str, Any]]:
    """One swapped question per answerable question that has something to swap. The `word` kind
    swaps a lower-case content word the question shares with its answer sentence ("geographic
    regions" -> "specific regions"), the attribute changes our evaluation's adversarial questions
    make most and names and numbers do not cover; `opposite` turns a word into its opposite
    ("left" -> "right", "more" -> "less") or negates the question ("will return" -> "will not
    return") where the sentence has no negation."""
    drawn = tuple(k for k in kinds if k != "opposite")  # an opposite comes from OPPOSITES
    pool = {k: set[str]() for k in drawn}
    for para in article["paragraphs"]:
        for kind, found in _kinds(para["context"], drawn).items():
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
            asked = _kinds(question, kinds)
            choices: list[tuple[str, str, list[str]]] = []
            for kind, found in _kinds(sentence, kinds).items():
                for token in sorted(asked[kind] & found):
                    if kind == "name" and question.startswith(token):
                        continue  # a capitalised first word is not a name
                    if kind == "opposite":  # "private medical clinic" -> "public medical what?"
                        opposite = OPPOSITES[token]
                        others = [opposite] if opposite not in sentence else []
                    else:
                        others = sorted(pool[kind] - found - asked[kind] - {token})
                    if kind == "number" and token.isdigit() and len(token) == 4:
                        others = [o for o in others if o.isdigit() and len(o) == 4]  # years
                    if kind == "word":
                        others = [o for o in others if _alike(token, o)]
                    if others:
                        choices.append((kind, token, others))
            # "Who was frustrated" -> "Who was not frustrated", for a share of the questions
            # only: nearly every question could be negated, and one kind should not crowd out
            # the others
            negatable = "opposite" in kinds and not _NEGATED.search(sentence)
            if negatable and rng.random() < NEGATE and (aux := _AUXILIARY.search(question[1:])):
                choices.append(("opposite", aux.group(0), [f"{aux.group(0)} not"]))
            if not choices:
                continue
            if "word" in kinds or "opposite" in kinds:  # many words to swap: pick the kind first
                kind = rng.choice(sorted({c[0] for c in choices}))
                choices = [c for c in choices if c[0] == kind]
            kind, token, others = rng.choice(choices)
            swapped = re.sub(
                rf"(?<!\w){re.escape(token)}(?!\w)",
                rng.choice(others),
                question,
                count=1 if kind == "opposite" else 0,
            )
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
    parser.add_argument(
        "--kinds",
        default=",".join(SHIPPED_KINDS),
        help=f"what may be swapped, of {','.join(KINDS)}",
    )
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {sorted(unknown)}")
    excluded = set(read_titles(args.eval_titles)) | set(read_titles(args.val_titles))
    rng = random.Random(args.seed)
    rows = [
        row
        for article in load_squad(args.squad)
        if article["title"] not in excluded
        for row in swaps(article, rng, kinds)
    ]
    print(f"{write_jsonl(args.out, rows)} swapped questions -> {args.out}")


if __name__ == "__main__":
    main()
