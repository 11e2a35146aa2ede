"""Loading every file of a Sphinx source tree: the tree walked per file, against once per run.

    python bench/sphinx_tree_bench.py [--files 540 2000] [--rounds 2]

For each size, a synthetic tree (`conf.py`, the files spread over 20 folders, each with a label,
a title, about 300 words and a ":ref:" to the next file) is loaded file by file with the real
reST loader, docutils included: once as a file loaded alone is (the tree walked for each file,
which is how an ingest run loaded it before), and once inside `one_walk_per_tree()`, as an
ingest run does now. The two alternate over --rounds, so both see the same machine load; the
figure is the ratio of their best times. 540 is the size of CPython's documentation; the reader
stops at 5,000 files. Writes bench/results/sphinx_tree.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from benchlib import write_results

from ingest.loaders import load_rst
from ingest.sphinx_tree import one_walk_per_tree

WORDS = "Each package must declare its dependencies before it is uploaded. " * 30


def make_tree(root: Path, files: int) -> list[Path]:
    """A Sphinx source tree of `files` pages, each linking to the next by its label."""
    (root / "conf.py").write_text("project = 'bench'\n")
    pages = []
    for k in range(files):
        folder = root / f"part{k % 20}"
        folder.mkdir(exist_ok=True)
        page = folder / f"page{k}.rst"
        page.write_text(
            f".. _label-{k}:\n\nTitle {k}\n{'=' * (6 + len(str(k)))}\n\n{WORDS}\n\n"
            f"See :ref:`label-{(k + 1) % files}`.\n"
        )
        pages.append(page)
    return pages


def load_all(pages: list[Path], once: bool) -> float:
    """Seconds to load every page, the tree walked once (`once`) or for each page."""
    began = time.perf_counter()
    with one_walk_per_tree() if once else contextlib.nullcontext():
        for page in pages:
            text = load_rst(page, page.read_bytes()).text
            assert "See Title" in text  # the link read as the next page's title
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[540, 2000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for files in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            pages = make_tree(Path(tmp), files)
            per_file, per_run = [], []
            for _ in range(args.rounds):
                per_file.append(load_all(pages, once=False))
                per_run.append(load_all(pages, once=True))
        rows.append(
            {
                "files": files,
                "walked_per_file_s": round(min(per_file), 2),
                "walked_once_s": round(min(per_run), 2),
                "ratio": round(min(per_file) / min(per_run), 2),
            }
        )
    lines = [
        "# Loading a Sphinx source tree: walked per file against once per run",
        "",
        "| files | walked per file (s) | walked once (s) | ratio |",
        "|---|---|---|---|",
        *(
            f"| {r['files']} | {r['walked_per_file_s']} | {r['walked_once_s']} | {r['ratio']} |"
            for r in rows
        ),
        "",
        f"Best of {args.rounds} alternating rounds; the reST loader with docutils, per file.",
        "",
    ]
    write_results("sphinx_tree", {"rows": rows, "rounds": args.rounds}, "\n".join(lines))


if __name__ == "__main__":
    main()
