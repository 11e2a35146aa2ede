"""Turn ConditionalQA's train split into (question, sentence, label) pairs: questions that people
wrote about their own situation, answered by sentences of UK government guidance.

Why: the evaluation's answerable questions are asked the way staff ask ("I've been a federal
employee for about 5 years now. How much annual leave do I earn each pay period?"), and the
answer model, taught by SQuAD questions written while reading the answer sentence, scores the
sentence that answers them low. ConditionalQA (Sun et al., 2022) has crowd workers ask about a
scenario of their own on a gov.uk page they had only skimmed, and annotators mark the page's
evidence sentences; 91 of its 2,338 train questions are marked unanswerable.

Pairs: a question's evidence sentences that hold one of its answers are label 1 (questions
answered yes or no are left out: which of their evidence sentences answers is a guess); the sentences of other questions' evidence on the same page
that share most of its words and hold none of its answers (`--hard`), and one sentence of
another page, are label 0; an unanswerable question gets `--hard` + 1 negatives of its page.
The page itself (documents.json) is not in the snapshot here, so the pages' sentences are the
evidence the train split marks. The pairs are written `--repeat` times, then whole questions of
the first stage's pairs (`--replay`), as faq.py does. Measured and not kept
(docs/evaluation.md, "Questions about one's own situation: ConditionalQA").
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, SEED, pair_row, whole_questions, write_jsonl

from rag_server.grounding import Policy, content_words

_TAG = re.compile(r"<[^>]+>")
_MIN_WORDS = Policy().min_claim_words  # the server never quotes a sentence with fewer
_YES_NO = {"yes", "no"}


def clean(evidence: str) -> str:
    """An evidence string as the server's candidates read: tags gone, entities decoded."""
    return " ".join(html.unescape(_TAG.sub(" ", evidence)).split())


def _answers(item: dict[str, Any]) -> list[str]:
    return [str(a[0]) for a in item.get("answers", []) if a and a[0]]


def _holds(sentence: str, answers: list[str]) -> bool:
    low = sentence.lower()
    return any(a.lower() in low for a in answers if a.lower() not in _YES_NO)


def pairs(items: list[dict[str, Any]], hard: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    page_sentences: dict[str, set[str]] = {}
    for item in items:
        for evidence in item.get("evidences", []):
            sentence = clean(evidence)
            if len(content_words(sentence)) >= _MIN_WORDS:
                page_sentences.setdefault(item["url"], set()).add(sentence)
    pages = sorted(page_sentences)
    for item in items:
        qid = f"cqa-{item['id']}"
        question = " ".join(str(item["question"]).split())
        answers = _answers(item)
        own = {clean(e) for e in item.get("evidences", [])}
        own = {s for s in own if len(content_words(s)) >= _MIN_WORDS}
        unanswerable = bool(item.get("not_answerable"))
        positives: list[str] = []
        if not unanswerable:
            positives = sorted(s for s in own if _holds(s, answers))
            if not positives:
                # A yes/no answer, or a span in no evidence sentence: which sentence answers is
                # a guess (a yes/no question's evidence is mostly its conditions' list items).
                continue
        for sentence in positives:
            yield pair_row(qid, question, sentence, 1, unanswerable)
        wanted = content_words(question)
        pool = sorted(
            s for s in page_sentences.get(item["url"], set()) - own if not _holds(s, answers)
        )
        ranked = sorted(pool, key=lambda s: -len(wanted & content_words(s)))
        for sentence in ranked[: hard + (1 if unanswerable else 0)]:
            yield pair_row(qid, question, sentence, 0, unanswerable)
        other = [p for p in pages if p != item["url"]]
        if other:
            sentence = rng.choice(sorted(page_sentences[rng.choice(other)]))
            yield pair_row(qid, question, sentence, 0, unanswerable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="ConditionalQA v1_0/train.json")
    parser.add_argument("--out", type=Path, default=DATA / "conditionalqa_pairs.jsonl")
    parser.add_argument("--hard", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=1, help="times each pair is written")
    parser.add_argument("--replay", type=Path, nargs="*", default=[], help="first-stage pairs")
    parser.add_argument("--replay-pairs", type=int, default=4000)
    parser.add_argument("--replay-seed", type=int, default=5)
    args = parser.parse_args()
    items = json.loads(args.train.read_text(encoding="utf-8"))
    rows = list(pairs(items, args.hard, args.seed))
    mixed = [{**r, "qid": f"{r['qid']}-r{k}"} for k in range(args.repeat) for r in rows]
    if args.replay:
        mixed += whole_questions(args.replay, args.replay_pairs, args.replay_seed)
    questions = len({r["qid"] for r in rows})
    positives = sum(r["label"] for r in rows)
    n = write_jsonl(args.out, mixed)
    print(
        f"{questions} questions, {len(rows)} pairs ({positives} positive), {n} rows -> {args.out}"
    )


if __name__ == "__main__":
    main()
