"""reStructuredText rendered to HTML by docutils, so the HTML reader reads it as a page.

Read as plain text, a reST file was quoted with its hard line breaks and its markup: "Orphaned
packages\\nshould have their ``Maintainer`` control field set to…", and ":ref:`binary package
control file\\n<s-binarycontrolfiles>`". Sphinx ships every page's source beside it
(`_sources/*.rst.txt`), so a documentation tree ingested whole gave each sentence twice, once
clean and once marked up. Rendered, a literal reads as its text, a link as its title, a literal
block as a code block, a section title as a heading.

docutils, not Sphinx: Sphinx's own roles and directives are unknown to it. An unknown role
(":ref:", ":doc:", ":manpage:", ":py:func:"…) is read as the text Sphinx would show, its title,
else its target; an unknown directive (toctree, index…) is left out, as its error message is.
Nothing in a document may reach outside it: file inclusion (`include`, a table's `:file:` or
`:url:`) and raw HTML are off, and no docutils.conf is read. The one thing read beside it is the
titles of a Sphinx project's labels and pages: from the build's inventory for a source in the
build's `_sources` folder (ingest/sphinx_inventory.py), else from the source tree around
`conf.py` (ingest/sphinx_tree.py). So a ":ref:" to a section of another page shows that
section's title.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from docutils import nodes
from docutils.core import publish_doctree, publish_from_doctree

from ingest.sphinx_inventory import Titles, title_of

_SETTINGS = {
    "_disable_config": True,  # no docutils.conf from the working directory or the home
    "file_insertion_enabled": False,  # include, csv-table :file: and :url:
    "raw_enabled": False,  # raw HTML is never passed through
    "report_level": 5,  # problems are not written into the page…
    "halt_level": 5,  # …nor raised: a malformed file still reads
    "warning_stream": False,
    "syntax_highlight": "none",
    "smart_quotes": True,  # as Sphinx renders the page: "---" an em dash, quotes curly
    "embed_stylesheet": False,
    "stylesheet_path": "",
    "image_loading": "link",  # an image is never read from disk or fetched
}
# ":role:`content`", ":domain:role:`content`": an interpreted text docutils did not know.
_ROLE = re.compile(r"\A:(?:[\w.+-]+:)*?([\w.+-]+):`(.*)`\Z", re.DOTALL)
_TITLED = re.compile(r"\A(.*?)\s*<([^<>]*)>\Z", re.DOTALL)


def rst_to_html(source: str, build: Titles | None = None, page: PurePosixPath | None = None) -> str:
    """The HTML page docutils writes for `source`, Sphinx's roles read as their text; `build`
    holds the titles of the Sphinx build the source belongs to, `page` its document name."""
    document = publish_doctree(source, settings_overrides=_SETTINGS)
    titles = _section_titles(document)
    for problem in list(document.findall(nodes.problematic)):
        shown = _shown(problem.astext(), titles, build or {}, page)
        problem.parent.replace(problem, nodes.Text(shown))
    html = publish_from_doctree(document, writer="html5", settings_overrides=_SETTINGS)
    return html.decode("utf-8") if isinstance(html, bytes) else str(html)


def _section_titles(document: nodes.document) -> dict[str, str]:
    """Each section's names (its labels among them) to its title: ":ref:`s-label`" without a
    title of its own shows the section's title, as Sphinx shows it, when the label is in this
    document."""
    titles: dict[str, str] = {}
    for section in document.findall(nodes.section):
        heading = next(iter(section.findall(nodes.title)), None)
        if heading is not None:
            for name in section["names"]:
                titles.setdefault(name, heading.astext())
    return titles


def _shown(raw: str, titles: dict[str, str], build: Titles, page: PurePosixPath | None) -> str:
    """What a reader sees of an unknown role: its explicit title, else its target's section
    title in this file or the build's title for it, else the target ("~os.path.join" shows
    "join", as Sphinx shows it). Any other problem (an unmatched backquote) keeps its text."""
    role = _ROLE.match(raw)
    if role is None:
        return raw
    content = " ".join(role.group(2).split())
    titled = _TITLED.match(content)
    if titled and titled.group(1):
        return titled.group(1)
    target = (titled.group(2) if titled else content).lstrip("!")
    if target.startswith("~"):
        return target[1:].rsplit(".", 1)[-1]
    here = titles.get(nodes.fully_normalize_name(target))
    return here or title_of(build, role.group(1), target, page) or target
