"""Questions that ask about something the paragraph never mentions, made by rule: an answerable
question with a modifier appended that its article uses elsewhere and its paragraph lacks ("Under
what circumstances do glaciers form" + " in Alaska?"), paired with its answer sentence as a
negative, beside the original question as its positive; then a replay sample of the training
pairs, so a trained model can continue on them (`train.py --init`). Measured, not shipped
(docs/evaluation.md, "Questions about what the documents never mention").

Why: the longer-trained answer model answers the example documents' "How many days of paid leave
do employees get for jury duty?" with the sentence on annual leave. The rule-made swaps
(augment.py) change a name or number the sentence holds; none adds an attribute the sentence lacks,
which is what SQuAD 2.0's human-written unanswerables often do and what a user asking about an
unlisted case does. The modifier comes from another question of the same article (a trailing
"for/in/during/at/on/under/among" phrase), so it stays on the article's topic.
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
    SEED,
    load_squad,
    pair_row,
    read_titles,
    sentence_at,
    whole_questions,
    write_jsonl,
)

from rag_server.grounding import STOPWORDS, sentence_spans

HERE = Path(__file__).resolve().parent

# A question's trailing phrase: a preposition, an optional determiner, one or two words.
_TRAILING = re.compile(
    r"\s((?:for|in|during|at|on|under|among)\s+(?:(?:the|a|an|his|their|its)\s+)?"
    r"[A-Za-z][\w'-]*(?:\s+[A-Za-z][\w'-]*)?)\s*\?$"
)
# Words that make a trailing phrase part of the question, not a modifier ("in what ocean", "in
# order", "at that time").
_NOT_MODIFYING = frozenset(
    "what which who whom whose how when where why this that these those them it him her order "
    "part terms addition total general use place time being there their his its".split()
)
TRIES = 20  # modifiers drawn per question before it is left out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _content(text: str) -> list[str]:
    return [w for w in _words(text) if w not in STOPWORDS and len(w) > 2]


def modifiers(article: dict[str, Any]) -> list[str]:
    """The article's questions' trailing phrases that modify ("in Alaska", "during the war")."""
    found: set[str] = set()
    for para in article["paragraphs"]:
        for qa in para["qas"]:
            match = _TRAILING.search(qa["question"].strip())
            if match is None:
                continue
            phrase = match.group(1)
            if any(c.isdigit() for c in phrase) or _NOT_MODIFYING & set(_words(phrase)):
                continue
            if _content(phrase):
                found.add(phrase)
    return sorted(found)


def answered(article: dict[str, Any]) -> Iterator[tuple[str, str, str, set[str]]]:
    """(id, question, answer sentence, the paragraph's words) of each answerable question."""
    for para in article["paragraphs"]:
        context = para["context"]
        words = set(_words(context))
        spans = sentence_spans(context)
        for qa in para["qas"]:
            question = qa["question"].strip()
            if qa["is_impossible"] or not qa["answers"] or not question.endswith("?"):
                continue
            start = int(qa["answers"][0]["answer_start"])
            hit = sentence_at(spans, start, start + 1)
            if hit is not None:
                lo, hi = spans[hit]
                yield qa["id"], question, context[lo:hi], words


def modified(question: str, paragraph: set[str], pool: list[str], rng: random.Random) -> str | None:
    """`question` with a modifier of `pool` none of whose content words the paragraph uses, and
    whose preposition does not already end the question; None when `TRIES` draws find none."""
    if not pool:
        return None
    ending = question.lower().split()[-3:]
    for _ in range(TRIES):
        phrase = rng.choice(pool)
        if not any(w in paragraph for w in _content(phrase)) and phrase.split()[0] not in ending:
            return f"{question[:-1].rstrip()} {phrase}?"
    return None


def pairs(
    articles: list[dict[str, Any]], questions: int, rng: random.Random
) -> list[dict[str, Any]]:
    """Up to `questions` modified questions as negatives, each beside its original as a positive."""
    pools = {a["title"]: modifiers(a) for a in articles}
    candidates = [(a["title"], *row) for a in articles for row in answered(a)]
    rng.shuffle(candidates)
    out: list[dict[str, Any]] = []
    for title, qid, question, sentence, paragraph in candidates:
        if len(out) >= 2 * questions:
            break
        asked = modified(question, paragraph, pools[title], rng)
        if asked is None:
            continue
        out.append(pair_row(f"{qid}-mod", asked, sentence, 0, impossible=True))
        out.append(pair_row(f"{qid}-orig", question, sentence, 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=DATA / "explorer-train-v2.0.json")
    # run.sh's: the articles the shipped model was validated on stay out of its training
    parser.add_argument("--eval-titles", type=Path, default=HERE / "no_eval_titles.txt")
    parser.add_argument("--val-titles", type=Path, default=HERE / "val_titles.txt")
    parser.add_argument("--questions", type=int, default=1500, help="modified questions")
    parser.add_argument(
        "--replay",
        type=Path,
        nargs="*",
        default=[DATA / "train_pairs.jsonl", DATA / "swapped_pairs.jsonl"],
        help="training pairs to draw the replay sample from",
    )
    parser.add_argument("--replay-pairs", type=int, default=15000)
    parser.add_argument("--out", type=Path, default=DATA / "modifier_pairs.jsonl")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    excluded = set(read_titles(args.eval_titles)) | set(read_titles(args.val_titles))
    articles = [a for a in load_squad(args.squad) if a["title"] not in excluded]
    rng = random.Random(args.seed)
    rows = pairs(articles, args.questions, rng)
    made = sum(1 for r in rows if r["impossible"])
    # whole questions of the first stage's pairs: what keeps a continued model from forgetting
    rows += whole_questions(args.replay, args.replay_pairs, args.seed)
    rng.shuffle(rows)
    print(f"{write_jsonl(args.out, rows)} pairs ({made} modified questions) -> {args.out}")


if __name__ == "__main__":
    main()
