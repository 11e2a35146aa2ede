"""The titles a Sphinx source tree gives its labels and documents, read from its `.rst` files.

A Sphinx build writes every label's title into `objects.inv` (ingest/sphinx_inventory.py), but a
documentation folder ingested from a repository is its sources, with no build: a ":ref:" to a
section of another file read as its label ("(see s-maintscriptprompt)") and a ":doc:" as its
path ("../index"). Sphinx resolves both over the whole tree, so the tree is read here the way
Sphinx reads it for these two roles: a label (".. _s-label:") names the section title that
follows it, and a document's title is its first section title.

The tree is the folder holding Sphinx's `conf.py`, found at most a few folders above the file,
never above a hidden folder (an upload's staging); `conf.py` is only looked for, never read or
run. Only its `.rst` files are read, without following links, up to a bound on their number and
size; past the bound, or with no tree, links read as before.

A tree is walked for each file it loads, so that an edited file is read again, unless the load is
inside `one_walk_per_tree()` (an ingest run): a run then walks each tree once, not once per file,
which made a run over a tree of n files stat n x n files (loading 2,000 took 71 s, against 9 s
walked once: bench/sphinx_tree_bench.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path, PurePosixPath

from ingest.sphinx_inventory import Titles

_CONF = "conf.py"
_MAX_UP = 4  # conf.py sits at the documentation's root, a few folders above any page
_MAX_FILES = 5000  # CPython's documentation has 540
_MAX_FILE = 2 * 1024 * 1024
_LABEL = re.compile(r"\.\. _([^:`][^:]*|`[^`]+`):\s*")
# A title's underline (or overline): one punctuation character repeated, as docutils requires.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+\s*")
# Inline literals and emphasis; underscores stay ("__init__"), as reST leaves them in a title.
_MARKUP = re.compile(r"``|\*{1,2}(?=\S)|(?<=\S)\*{1,2}")
# Inside one_walk_per_tree(): each tree's titles as first read (None past the bound), by its root.
_RUN: ContextVar[dict[Path, Titles | None] | None] = ContextVar("sphinx_tree_run", default=None)


@contextlib.contextmanager
def one_walk_per_tree() -> Iterator[None]:
    """Within it, each tree is walked and read once, at its first file: one ingest run reads the
    tree as it stood when the run came to it, as Sphinx reads it once per build."""
    token = _RUN.set({})
    try:
        yield
    finally:
        _RUN.reset(token)


def titles_in_tree(path: Path) -> tuple[Titles, PurePosixPath | None]:
    """For a `.rst` file inside a Sphinx source tree: the tree's titles, and the file's document
    name ("ch-files", "library/os"), which a relative ":doc:" is read against. Elsewhere,
    nothing."""
    root = _root(path)
    if root is None:
        return {}, None
    run = _RUN.get()
    if run is None:
        titles = _titles(root)
    elif root in run:
        titles = run[root]
    else:
        titles = run[root] = _titles(root)
    if titles is None:
        return {}, None
    return titles, PurePosixPath(path.relative_to(root).as_posix()).with_suffix("")


def _titles(root: Path) -> Titles | None:
    files = _sources(root)
    return None if files is None else _read(str(root), tuple(files))


def _root(path: Path) -> Path | None:
    for up, parent in enumerate(path.parents):
        if up >= _MAX_UP or parent.name.startswith("."):
            return None
        try:
            if stat.S_ISREG((parent / _CONF).lstat().st_mode):
                return parent
        except OSError:
            continue
    return None


def _sources(root: Path) -> list[tuple[str, int, int]] | None:
    """Each `.rst` file of the tree as (path relative to the root, mtime, size): what the
    titles are read from, and what says they must be read again. None past the bound."""
    found: list[tuple[str, int, int]] = []
    for folder, dirs, names in os.walk(root):  # links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if not name.endswith(".rst"):
                continue
            try:
                info = Path(folder, name).lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size <= _MAX_FILE:
                relative = Path(folder, name).relative_to(root).as_posix()
                found.append((relative, info.st_mtime_ns, info.st_size))
            if len(found) > _MAX_FILES:
                return None
    return found


@functools.lru_cache(maxsize=4)
def _read(root: str, files: tuple[tuple[str, int, int], ...]) -> Titles:
    """One reading per tree and version of its files: a tree's pages all read the same one."""
    titles: dict[tuple[str, str], str] = {}
    for relative, _, _ in files:
        try:
            text = Path(root, relative).read_text("utf-8", errors="replace")
        except OSError:
            continue
        document = relative.removesuffix(".rst")
        first = True
        for labels, title in _sections(text.splitlines()):
            if first:
                titles.setdefault(("doc", document), title)
                first = False
            for label in labels:
                titles.setdefault(("ref", label), title)
    return titles


def _sections(lines: list[str]) -> list[tuple[list[str], str]]:
    """Each section title of a file, with the labels standing right above it."""
    found: list[tuple[list[str], str]] = []
    labels: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k].rstrip()
        label = _LABEL.fullmatch(line)
        if label:
            labels.append(" ".join(label.group(1).strip("`").split()).lower())
            k += 1
            continue
        if not line:
            k += 1
            continue
        over = _ADORNMENT.fullmatch(line) is not None
        text, under = (lines[k + 1 : k + 2] or [""])[0], (lines[k + 2 : k + 3] or [""])[0]
        if over and text.strip() and _ADORNMENT.fullmatch(under.rstrip()):
            found.append((labels, _plain(text)))
            k += 3
        elif not over and _ADORNMENT.fullmatch(text.rstrip()) and len(text.rstrip()) >= len(line):
            found.append((labels, _plain(line)))
            k += 2
        else:
            k += 1
        labels = []
    return found


def _plain(title: str) -> str:
    """A title as Sphinx shows it in a link: without its literal and emphasis markup."""
    return " ".join(_MARKUP.sub("", title).split())
