"""Turn SQuAD 2.0 train into (question, sentence, label) pairs for the answer scorer.

Why this shape: the server scores single sentences, so pairs are built from sentences cut by the
server's own splitter (`rag_server.grounding.sentence_spans`); training then matches inference.
The negatives that matter most are SQuAD 2.0's unanswerable questions paired with the sentence
holding their plausible (wrong) answer: on-topic but not an answer, which is exactly what the
scorer must learn to refuse. An answerable question's own negatives matter too: random sentences
of its paragraph are easy, while the sentence that introduces the topic, just before the answer,
is the one the scorer ranked first on the evaluation corpora (`--hard-negatives`). The eval titles
are excluded and 20 other titles are held out whole.
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
    pair_row,
    read_titles,
    sentence_at,
    val_titles,
    write_jsonl,
)

from rag_server.grounding import sentence_spans

Row = dict[str, Any]


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    """Lower-cased words of three letters or more. Not `grounding.content_words` (stemmed, without
    stop words): the shipped model's pairs were chosen with this, and `run.sh` must reproduce them."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def hard_negatives(
    question: str, sentences: list[str], hit: int, answer: str, n: int, rng: random.Random
) -> list[int]:
    """Up to `n` other sentences of the paragraph, the confusable ones first: the sentence just
    before the answer (often the one that introduces the topic, which the scorer ranked above the
    fact-stating sentence on the evaluation corpora), then the one sharing most of the question's
    words, then random ones. A sentence that also holds the answer text is never a negative."""
    pool = [i for i in range(len(sentences)) if i != hit and answer not in sentences[i]]
    picked = [hit - 1] if hit - 1 in pool else []
    asked = _words(question)
    shared = {i: len(asked & _words(sentences[i])) for i in pool if i not in picked}
    closest = max(shared, key=lambda i: (shared[i], -abs(i - hit)), default=None)
    if closest is not None and shared[closest] and len(picked) < n:
        picked.append(closest)
    rest = [i for i in pool if i not in picked]
    picked += rng.sample(rest, max(0, min(n - len(picked), len(rest))))
    return picked[:n]


def article_pairs(
    article: dict[str, Any],
    rng: random.Random,
    *,
    full: bool,
    negatives: int = 3,
    hard: bool = False,
) -> Iterator[Row]:
    """Pairs of one article. `full` (validation) keeps every sentence of the paragraph instead of
    sampling negatives, so per-question top-1 and max-score gating can be measured; otherwise an
    answerable question gets `negatives` other sentences of its paragraph (random ones, or with
    `hard` the confusable ones first: `hard_negatives`) and one of another paragraph."""
    paragraphs = [(p, sentence_spans(p["context"])) for p in article["paragraphs"]]
    for index, (para, spans) in enumerate(paragraphs):
        context = para["context"]
        sentences = [context[lo:hi] for lo, hi in spans]
        for qa in para["qas"]:
            question, qid, impossible = qa["question"].strip(), qa["id"], bool(qa["is_impossible"])
            answers = qa["plausible_answers"] if impossible else qa["answers"]
            hit = None
            if answers:
                start = int(answers[0]["answer_start"])
                hit = sentence_at(spans, start, start + len(answers[0]["text"]))
            if hit is None and not impossible:
                continue  # answer across a sentence boundary: no single sentence answers it
            if full:
                for i, sentence in enumerate(sentences):
                    yield pair_row(
                        qid, question, sentence, int(i == hit and not impossible), impossible
                    )
                continue
            others = [i for i in range(len(sentences)) if i != hit]
            if impossible:
                if hit is not None:
                    yield pair_row(
                        qid, question, sentences[hit], 0, True
                    )  # the adversarial near-miss
                for i in rng.sample(others, min(2, len(others))):
                    yield pair_row(qid, question, sentences[i], 0, True)
                continue
            assert hit is not None
            yield pair_row(qid, question, sentences[hit], 1, False)
            if hard:
                chosen = hard_negatives(
                    question, sentences, hit, answers[0]["text"], negatives, rng
                )
            else:
                chosen = rng.sample(others, min(negatives, len(others)))
            for i in chosen:
                yield pair_row(qid, question, sentences[i], 0, False)
            elsewhere = [j for j in range(len(paragraphs)) if j != index and paragraphs[j][1]]
            if elsewhere:
                other_para, other_spans = paragraphs[rng.choice(elsewhere)]
                lo, hi = rng.choice(other_spans)
                yield pair_row(qid, question, other_para["context"][lo:hi], 0, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=SQUAD_TRAIN)
    parser.add_argument("--eval-titles", type=Path, default=EVAL_TITLES)
    parser.add_argument("--n-val", type=int, default=20)
    parser.add_argument(
        "--val-titles", type=Path, help="explicit held-out titles (one a line) instead of a sample"
    )
    parser.add_argument(
        "--val-max-questions", type=int, default=2000, help="cap: validation is scored 3x at export"
    )
    parser.add_argument(
        "--negatives", type=int, default=3, help="other sentences of the paragraph per question"
    )
    parser.add_argument(
        "--hard-negatives",
        action="store_true",
        help="the sentence before the answer and the one sharing most question words come first",
    )
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    articles = load_squad(args.squad)
    excluded = set(read_titles(args.eval_titles))
    missing = excluded - {a["title"] for a in articles}
    if missing:
        raise SystemExit(f"eval titles not in {args.squad}: {sorted(missing)}")
    held_out = set(
        read_titles(args.val_titles)
        if args.val_titles
        else val_titles(articles, excluded, args.n_val, args.seed)
    )
    rng = random.Random(args.seed)
    train = [
        r
        for a in articles
        if a["title"] not in excluded | held_out
        for r in article_pairs(
            a, rng, full=False, negatives=args.negatives, hard=args.hard_negatives
        )
    ]
    val = [r for a in articles if a["title"] in held_out for r in article_pairs(a, rng, full=True)]
    qids = sorted({r["qid"] for r in val})
    if len(qids) > args.val_max_questions:
        keep = set(random.Random(args.seed).sample(qids, args.val_max_questions))
        val = [r for r in val if r["qid"] in keep]
    args.out.mkdir(parents=True, exist_ok=True)
    n_train = write_jsonl(args.out / "train_pairs.jsonl", train)
    n_val = write_jsonl(args.out / "val_pairs.jsonl", val)
    (args.out / "val_titles.txt").write_text("\n".join(sorted(held_out)) + "\n", encoding="utf-8")
    print(
        f"train pairs {n_train} ({len({r['qid'] for r in train})} questions), "
        f"val pairs {n_val} ({len({r['qid'] for r in val})} questions), "
        f"excluded {len(excluded)} eval titles, {len(held_out)} val titles"
    )


if __name__ == "__main__":
    main()
