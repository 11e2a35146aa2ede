"""The titles a Sphinx build gives its labels and pages, read from the build's `objects.inv`.

A page's reST source is read alone (ingest/restructuredtext.py), so ":ref:`s-maintscriptprompt`"
to a section in another file read as its label: Debian Policy's answers quoted "(see
s-maintscriptprompt)" where the page shows "(see Prompting in maintainer scripts)". Sphinx
writes every label and page of the tree, with the title it shows for each, into the inventory
beside the `_sources` folder; a source read from that folder reads its links as the page does.

The inventory is parsed here rather than through Sphinx (`sphinx.util.inventory`, which would make
Sphinx and its dependencies part of the install for one function) or `sphobjinv` (which brings a
schema validator and a downloader). Its format, version 2, is four comment lines and zlib-compressed
lines of `name domain:role priority uri display-name`. Only the standard domain's labels and
documents are kept: they are what ":ref:" and ":doc:" show. A missing, oversized or malformed
inventory gives no titles, and the links read as before.
"""

from __future__ import annotations

import functools
import re
import stat
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from rag_core.records import SPHINX_SOURCES

_HEADER = b"# Sphinx inventory version 2"
_MAX_FILE = 8 * 1024 * 1024  # Python's own documentation writes 140 kB
_MAX_TEXT = 64 * 1024 * 1024  # what the compressed part may expand to
_MAX_LINE = 2048
# Sphinx's own pattern: the name may hold spaces; the priority is an integer.
_ENTRY = re.compile(r"(.+?)\s+(\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)")
_ROLES = {"std:label": "ref", "std:doc": "doc"}

# (role, target) -> the title Sphinx shows: ("ref", "s-label") or ("doc", "ch-files")
Titles = Mapping[tuple[str, str], str]


def titles_beside(path: Path) -> tuple[Titles, PurePosixPath | None]:
    """For a page source inside a build's `_sources` folder: the build's titles, and the page's
    document name ("ch-files", "library/os"), which a relative ":doc:" is read against.
    Elsewhere, or inside a hidden folder (an upload's staging), nothing."""
    for depth, parent in enumerate(path.parents):
        if parent.name.startswith("."):
            break
        if parent.name == SPHINX_SOURCES:
            inside = path.parts[len(path.parts) - depth - 1 :]
            name = PurePosixPath(*inside)
            while name.suffix in (".txt", ".rst"):  # "ch-files.rst.txt" -> "ch-files"
                name = name.with_suffix("")
            return _read(parent.parent / "objects.inv"), name
    return {}, None


def _read(inventory: Path) -> Titles:
    try:
        found = inventory.lstat()  # a link is no regular file here: never followed
    except OSError:
        return {}
    if not stat.S_ISREG(found.st_mode) or found.st_size > _MAX_FILE:
        return {}
    return _parsed(str(inventory), found.st_mtime_ns, found.st_size)


@functools.lru_cache(maxsize=4)
def _parsed(inventory: str, _mtime: int, _size: int) -> Titles:
    """One parse per build and version of its inventory: a tree's pages all read the same one."""
    try:
        data = Path(inventory).read_bytes()
    except OSError:
        return {}
    head = data.split(b"\n", 4)
    if len(head) < 5 or head[0].rstrip() != _HEADER or b"zlib" not in head[3]:
        return {}
    unzip = zlib.decompressobj()
    try:
        text = unzip.decompress(head[4], _MAX_TEXT)
    except zlib.error:
        return {}
    if unzip.unconsumed_tail or not unzip.eof:  # larger than any real one, or cut short
        return {}
    titles: dict[tuple[str, str], str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        if len(line) > _MAX_LINE:  # no real entry is; the pattern backtracks over long lines
            continue
        entry = _ENTRY.fullmatch(line.strip())
        if entry is None or entry.group(2) not in _ROLES:
            continue
        name, shown = entry.group(1), " ".join(entry.group(5).split())
        titles[(_ROLES[entry.group(2)], name)] = name if shown in ("", "-") else shown
    return titles


def title_of(titles: Titles, role: str, target: str, page: PurePosixPath | None) -> str | None:
    """The title Sphinx shows for ":ref:`target`" or ":doc:`target`" on `page`, if the build
    knows it. Labels are case-blind in Sphinx; a document is named from the source root
    ("/library/os") or from the page's folder ("os", "../tutorial/index")."""
    if role == "ref":
        return titles.get(("ref", target.lower()))
    if role != "doc":
        return None
    if target.startswith("/"):
        name = target.lstrip("/")
    else:
        folder = page.parent if page is not None else PurePosixPath()
        parts: list[str] = []
        for part in (folder / target).parts:
            if part == "..":
                if not parts:
                    return None
                parts.pop()
            elif part != ".":
                parts.append(part)
        name = "/".join(parts)
    return titles.get(("doc", name))
