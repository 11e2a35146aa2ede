"""Rebuild SQuAD train from the SQuAD explorer's article pages, when the JSON file is out of reach.

Why: the official `train-v2.0.json` (42 MB) cannot be fetched here, but the explorer site's
repository (`rajpurkar/SQuAD-explorer`, commit `13f82e35`, folder `explore/1.1/train/`) holds one
HTML page per SQuAD 1.1 train article: every paragraph with its questions and their answers
(442 articles, 87,599 questions). SQuAD 2.0 train is built on SQuAD 1.1 train, adding
unanswerable questions to the same paragraphs, so the pages give its answerable part. They carry
answer texts, not offsets: an answer is placed at its first occurrence in the paragraph, and
dropped when it does not occur (none is). Articles of a real SQuAD 2.0 file passed with `--v2`
replace their page versions, so that file's unanswerable questions and exact offsets are kept.

    git --git-dir MIRROR archive 13f82e35b9a1fb9173f863b35f5675030646571e explore/1.1/train \
        | tar -x -C training/answer_scorer/.data/explorer
    .venv/bin/python training/answer_scorer/explorer.py \
        --pages training/answer_scorer/.data/explorer/explore/1.1/train \
        --v2 training/answer_scorer/.data/subset-train-v2.0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, load_squad, sha256

PAGES = {
    "repo": "rajpurkar/SQuAD-explorer",
    "commit": "13f82e35b9a1fb9173f863b35f5675030646571e",
    "path": "explore/1.1/train/*.html",
    "licence": "the dataset CC BY-SA 4.0 (SQuAD); the site's code MIT",
}

Article = dict[str, Any]


def page_article(html: str) -> tuple[Article, int]:
    """One explorer page as a SQuAD 2.0 article, and how many answers are not in their paragraph."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("h1", id="title")
    if title_tag is None:
        raise ValueError("no article title")
    title = title_tag.get_text().strip()
    paragraphs = []
    dropped = 0
    for p_index, wrap in enumerate(soup.select("div.para-wrap")):
        pre = wrap.find("pre")
        if pre is None:
            continue
        context = pre.get_text()
        qas = []
        for q_index, qa in enumerate(wrap.select("div.qa-wrap")):
            question = qa.select_one("strong.question")
            answer = qa.select_one("span.answer")
            if question is None or answer is None:
                continue
            text = answer.get_text()
            start = context.find(text)
            if not text.strip() or start < 0:
                dropped += 1
                continue
            qas.append(
                {
                    "id": f"explorer:{title}:{p_index}:{q_index}",
                    "question": question.get_text(),
                    "answers": [{"text": text, "answer_start": start}],
                    "is_impossible": False,
                }
            )
        if qas:
            paragraphs.append({"context": context, "qas": qas})
    return {"title": title, "paragraphs": paragraphs}, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, required=True, help="the explore/1.1/train folder")
    parser.add_argument("--v2", type=Path, help="a SQuAD 2.0 train file whose articles win")
    parser.add_argument(
        "--v2-source", type=Path, default=DATA / "SOURCE.json", help="where the --v2 file came from"
    )
    parser.add_argument("--out", type=Path, default=DATA / "explorer-train-v2.0.json")
    args = parser.parse_args()
    exact = {a["title"]: a for a in load_squad(args.v2)} if args.v2 else {}
    articles: list[Article] = []
    dropped = 0
    for page in sorted(args.pages.glob("*.html")):
        if page.name == "index.html":
            continue
        article, lost = page_article(page.read_text(encoding="utf-8"))
        if article["title"] in exact:
            article, lost = exact.pop(article["title"]), 0
        articles.append(article)
        dropped += lost
    articles.extend(exact.values())
    questions = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    unanswerable = sum(
        qa["is_impossible"] for a in articles for p in a["paragraphs"] for qa in p["qas"]
    )
    args.out.write_text(json.dumps({"version": "v2.0", "data": articles}), encoding="utf-8")
    summary = (
        f"{len(articles)} articles, {questions} questions ({unanswerable} unanswerable); "
        f"{dropped} answers not found in their paragraph were dropped"
    )
    source = {  # read by export.py --source into the model card
        "built_by": "training/answer_scorer/explorer.py",
        "content": "SQuAD train rebuilt from the SQuAD explorer's article pages (the questions of "
        "SQuAD 1.1 train, on which SQuAD 2.0 train's answerable part is built), the --v2 file's "
        f"articles replacing their page versions: {summary}",
        "file_sha256": sha256(args.out),
        "pages": PAGES,
        "v2_subset": json.loads(args.v2_source.read_text(encoding="utf-8"))
        if args.v2 and args.v2_source.exists()
        else None,
    }
    provenance = args.out.with_suffix(".SOURCE.json")
    provenance.write_text(json.dumps(source, indent=1) + "\n", encoding="utf-8")
    print(f"{summary} -> {args.out}, {provenance}")


if __name__ == "__main__":
    main()
