"""Turn FAQ documents into (question, sentence, label) pairs: questions asked the way users ask.

Why: SQuAD's questions were written while reading the answer sentence, so they share its words;
the evaluation corpora's questions are paraphrases ("how do I...", second person), and that is
where the answer model ranks a restating sentence above the one holding the answer. An FAQ pairs
a user's question (its heading) with the answer written under it, in a manual's own prose.

Pairs: the first `--positives` statements under a question heading answer it (label 1); the
statements of other answers that share most of the question's words (`--hard`) and one of another
file are labelled 0. The rest of the answer is left out: it may or may not answer. Files are read
with the ingestion loader and cut with the server's splitter, as the server reads them. The pairs
are written `--repeat` times, then whole questions of the first stage's pairs (`--replay`), so a
second training stage on them keeps what the first taught. Measured and not kept
(docs/evaluation.md, "Questions as users ask them").
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, SEED, pair_row, whole_questions, write_jsonl

from ingest.loaders import load
from rag_server.grounding import Policy, content_words, sentence_spans

# "7.1. What is a Debian package?", "3.2: How ...?" -> the question alone
_NUMBERING = re.compile(r"^\s*(?:\d+[.:]?)*\s*:?\s*")
# Perl's FAQ is POD: its headings and format codes, read as Markdown
_POD_HEADING = re.compile(r"^=head([1-4])\s+(.*)$", re.MULTILINE)
_POD_COMMAND = re.compile(r"^=(?:over|back|cut|pod|begin|end|for|encoding)\b.*$", re.MULTILINE)
_POD_ITEM = re.compile(r"^=item\s*", re.MULTILINE)
_POD_CODE = re.compile(r"[A-Z]<<+\s(.*?)\s>>+|[A-Z]<([^<>]*)>", re.DOTALL)
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}
_CREDIT = re.compile(r"\s*\((?:contributed|written|answered) by\b", re.IGNORECASE)
# The server never quotes a sentence with fewer content words, so neither is a pair made of one.
_MIN_WORDS = Policy().min_claim_words


@dataclass(frozen=True)
class Entry:
    """One FAQ question and the statements of its answer, in order; `source` is its file's path
    (two FAQs may both have a general.html)."""

    source: str
    question: str
    statements: tuple[str, ...]


def pod_to_markdown(pod: str) -> str:
    """POD's headings as Markdown headings, its format codes as their text (L<text|target> as
    text, E<lt> as <); enough for the loader to find questions and their answers."""

    def code(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        if match.group(0)[0] in "XZ":  # index entries and null codes say nothing
            return ""
        if match.group(0).startswith("E<"):
            return _POD_ESCAPES.get(inner, "")
        if match.group(0).startswith("L<"):
            return inner.split("|", 1)[0]
        return inner

    text = _POD_HEADING.sub(lambda m: "#" * int(m.group(1)) + " " + m.group(2), pod)
    text = _POD_ITEM.sub("- ", _POD_COMMAND.sub("", text))
    for _ in range(3):  # nested codes: C<I<x>>
        text = _POD_CODE.sub(code, text)
    return text


def entries(path: Path) -> Iterator[Entry]:
    """Each heading that asks a question, with the statements before the next heading."""
    if path.suffix == ".pod":
        markdown = pod_to_markdown(path.read_text(encoding="utf-8"))
        document = load(path.with_suffix(".md"), markdown.encode())
    else:
        document = load(path, path.read_bytes())
    text = document.text
    headings = document.headings
    for k, (offset, heading) in enumerate(headings):
        question = _NUMBERING.sub("", heading).strip()
        if not question.endswith("?"):
            continue
        end = headings[k + 1][0] if k + 1 < len(headings) else len(text)
        body = text[offset + len(heading) : end]
        statements = tuple(
            " ".join(body[lo:hi].split())
            for lo, hi in sentence_spans(body)
            if len(content_words(body[lo:hi])) >= _MIN_WORDS and not _CREDIT.match(body[lo:hi])
        )
        if statements:
            yield Entry(str(path), question, statements)


def pairs(
    all_entries: Sequence[Entry], positives: int, hard: int, seed: int
) -> Iterator[dict[str, Any]]:
    """Each question's positives, then its `hard` negatives from other answers of its file, then one
    statement of another file."""
    rng = random.Random(seed)
    for i, entry in enumerate(all_entries):
        qid = f"faq-{Path(entry.source).name}-{i}"
        for sentence in entry.statements[:positives]:
            yield pair_row(qid, entry.question, sentence, 1)
        wanted = content_words(entry.question)
        same_file = [
            s
            for j, other in enumerate(all_entries)
            if j != i and other.source == entry.source and other.question != entry.question
            for s in other.statements
        ]
        ranked = sorted(same_file, key=lambda s: -len(wanted & content_words(s)))
        for sentence in ranked[:hard]:
            yield pair_row(qid, entry.question, sentence, 0)
        elsewhere = [e for e in all_entries if e.source != entry.source]
        if elsewhere:
            yield pair_row(qid, entry.question, rng.choice(rng.choice(elsewhere).statements), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="FAQ documents (HTML, Markdown, POD)")
    parser.add_argument("--out", type=Path, default=DATA / "faq_pairs.jsonl")
    parser.add_argument("--positives", type=int, default=2)
    parser.add_argument("--hard", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=2, help="times each FAQ pair is written")
    parser.add_argument("--replay", type=Path, nargs="*", default=[], help="first-stage pairs")
    parser.add_argument("--replay-pairs", type=int, default=4000)
    parser.add_argument("--replay-seed", type=int, default=5)
    args = parser.parse_args()
    found: dict[tuple[str, str], Entry] = {}
    for path in sorted(args.files):
        for entry in entries(path):
            # A FAQ shipped in two spellings (page.html and page.en.html) counts once.
            found.setdefault((entry.question, entry.statements[0]), entry)
    unique = list(found.values())
    rows = list(pairs(unique, args.positives, args.hard, args.seed))
    mixed = [{**r, "qid": f"{r['qid']}-r{k}"} for k in range(args.repeat) for r in rows]
    if args.replay:
        mixed += whole_questions(args.replay, args.replay_pairs, args.replay_seed)
    n = write_jsonl(args.out, mixed)
    print(f"{len(unique)} questions, {len(rows)} FAQ pairs, {n} rows -> {args.out}")


if __name__ == "__main__":
    main()
