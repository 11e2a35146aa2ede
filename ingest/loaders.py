"""File -> extracted text, title, page starts and heading positions. One loader per format.

Offsets everywhere refer to the extracted text returned here, so a citation's start..end can be
checked against it. Loaders raise LoadError with a reason a person can act on.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ingest import pdf_text
from ingest.list_markers import BULLET, HTML_TYPES, format_number
from ingest.table_rows import row_line
from ingest.text_headings import text_headings
from ingest.text_unwrap import unwrap

if TYPE_CHECKING:
    from bs4.element import Tag
    from markdown_it import MarkdownIt
    from pypdf import PdfReader


log = logging.getLogger(__name__)


class LoadError(Exception):
    """This file cannot be ingested; the message says why."""


@dataclass
class LoadedDocument:
    text: str
    title: str
    page_starts: list[int] | None = None  # offset where page i+1 begins (PDF only)
    headings: list[tuple[int, str]] = field(default_factory=list)  # (offset, heading), sorted
    # Preformatted blocks (code, a console session): (start, end), sorted. Their lines stay lines,
    # and none is an answer of its own (its "* item" or "# comment" lines are no statements).
    code: list[tuple[int, int]] = field(default_factory=list)


_MD_FRONT_MATTER = re.compile(
    r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.M | re.S
)
_MD_FRONT_TITLE = re.compile(r"^title:[ \t]*[\"']?(.*?)[\"']?[ \t]*$", re.MULTILINE)
_MD_MAX_NESTING = 40  # block levels (a list item is two): nineteen lists deep
_MD_LIQUID_TARGET = re.compile(r"\]\([ \t]*\{%[^%\n]*%\}[ \t]*\)")
# A DOCX is a zip: refuse ones that inflate absurdly before python-docx reads them.
_MAX_DOCX_INFLATED = 200 * 1024 * 1024
_MAX_DOCX_RATIO = 200


def _decode_text(data: bytes) -> str:
    """Strict UTF-8 (BOM allowed): anything else is reported, never guessed."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("binary data, not text")
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _fallback_title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def load_text(path: Path, data: bytes) -> LoadedDocument:
    """UTF-8 text, its filled paragraphs a line each (ingest/text_unwrap.py says why)."""
    text = unwrap(_decode_text(data))
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    title = first if 0 < len(first) <= 120 else _fallback_title(path)
    return LoadedDocument(text=text, title=title, headings=text_headings(text))


def load_markdown(path: Path, data: bytes) -> LoadedDocument:
    """A Markdown file read as its rendered page, by the HTML reader: a link reads as its text
    (its target was 30% of the 18F handbook's word pieces, and a quote showed
    "[acknowledged]({% page "/performance-management/…" %})"), a table a row a line, a list item
    with its marker, emphasis without its asterisks. CommonMark with GFM tables and footnotes, by
    markdown-it-py (the parser `rich` already installs) and its plugins (mdit-py-plugins)."""
    text = _decode_text(data)
    # YAML front matter (site generators' metadata) is not prose: never indexed or quoted; its
    # title serves when the page has no level-1 heading.
    front = _MD_FRONT_MATTER.match(text)
    meta_title = None
    if front:
        found = _MD_FRONT_TITLE.search(front.group(1))
        meta_title = found.group(1).strip() if found and found.group(1).strip() else None
        text = text[front.end() :]
    # A link to another page of a Jekyll site names it by a Liquid tag ("({% page "/x/" %})"),
    # which is no link target CommonMark reads: the link reads as its text, as the site shows it.
    text = _MD_LIQUID_TARGET.sub("](#)", text)
    parser = _markdown()
    env: dict[str, object] = {}  # the footnotes parsed, which rendering numbers
    tokens = parser.parse(text, env)
    # Past its nesting limit markdown-it stops reading, and the rest of the file would be lost
    # without a word: refuse the file instead.
    if max((token.level for token in tokens), default=0) >= _MD_MAX_NESTING - 1:
        raise LoadError(f"lists or quotes nested more than {_MD_MAX_NESTING} levels deep")
    return _html_document(path, parser.renderer.render(tokens, parser.options, env), meta_title)


def load_rst(path: Path, data: bytes) -> LoadedDocument:
    """reStructuredText (a Sphinx tree's `.rst` sources, or its `_sources/*.rst.txt` copies) read
    as the page docutils renders, by the HTML reader (ingest/restructuredtext.py says why)."""
    from ingest.restructuredtext import rst_to_html
    from ingest.sphinx_inventory import titles_beside
    from ingest.sphinx_tree import titles_in_tree

    build, page = titles_beside(path)
    if page is None:  # no build's copy: a source tree's file, or a file alone
        build, page = titles_in_tree(path)
    return _html_document(path, rst_to_html(_decode_text(data), build, page))


@functools.cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.footnote import footnote_plugin

    # GFM's footnotes ("days[^1]", "[^1]: Pro rata…"); CommonMark alone read a footnote whose
    # text is a web address as a link definition, dropped it, and showed its mark as "days^1".
    # Inline notes ("^[…]") are no GFM, and stay as written.
    parser = MarkdownIt("commonmark", {"maxNesting": _MD_MAX_NESTING}).enable("table")
    return parser.use(footnote_plugin, inline=False)


class _PypdfWarnings(logging.Handler):
    """pypdf logs a warning for every damaged object it works around (dozens for one bad file,
    on stderr when logging is not configured, as in rag-ingest). While a PDF loads, that thread's
    pypdf warnings are collected here instead, and the loader logs one line naming the file.
    Warnings from any other use of pypdf pass on to logging as before."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found: list[str] | None = getattr(self._local, "found", None)
        if found is None:
            log.handle(record)
        else:
            found.append(record.getMessage())

    @contextmanager
    def collect(self) -> Iterator[list[str]]:
        found: list[str] = []
        self._local.found = found
        try:
            yield found
        finally:
            self._local.found = None


_PYPDF_WARNINGS = _PypdfWarnings()
logging.getLogger("pypdf").addHandler(_PYPDF_WARNINGS)
logging.getLogger("pypdf").propagate = False


def load_pdf(path: Path, data: bytes) -> LoadedDocument:
    with _PYPDF_WARNINGS.collect() as warnings:
        try:
            document = _load_pdf(path, data)
        finally:
            if warnings:
                log.warning(
                    "%s: pypdf worked around %d problem(s) in this PDF, the first: %s",
                    path.name,
                    len(warnings),
                    warnings[0],
                )
    return document


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("password-protected PDF")
        _refuse_active_content(reader, len(data))
        meta_title = reader.metadata.title if reader.metadata else None
        extracted = pdf_text.page_texts(data, len(reader.pages))
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(f"unreadable PDF: {exc}") from None
    except Exception as exc:  # pypdf raises assorted errors on hostile input
        raise LoadError(f"unreadable PDF: {type(exc).__name__}: {exc}") from None
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for page_text in extracted.pages:
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise LoadError("PDF has no text layer (scanned image?)")
    title = str(meta_title).strip() if meta_title and str(meta_title).strip() else None
    return LoadedDocument(
        text=text,
        title=title or _fallback_title(path),
        page_starts=starts,
        headings=[(starts[page] + at, heading) for page, at, heading in extracted.headings],
    )


# The JavaScript check walks at most this many objects (a walk bound for hostile object graphs,
# about 10 s on a busy core). A PDF it cannot finish is refused: padding a script with 225,000
# objects must not make it look clean. Real documents stay far below (a 1,000-page manual: ~30k).
_MAX_PDF_OBJECTS = 200_000
# An object missing from the cross-reference table, or not at its offset, costs pypdf a search
# of the whole file: thousands of them make the check quadratic (8,000 took 114 s). The walk stops
# once its searches would have read this many bytes, and the file is refused as damaged.
_MAX_PDF_SEARCH_BYTES = 100_000_000


def _refuse_active_content(reader: PdfReader, size: int) -> None:
    """Refuse a PDF with JavaScript, or one the check cannot finish: too many objects (its table
    says so before any walking; the walk stops at the same bound whatever the table says) or too
    damaged to look its objects up."""
    listed = sum(len(objects) for objects in reader.xref.values()) + len(reader.xref_objStm)
    if listed > _MAX_PDF_OBJECTS:
        raise LoadError(_unchecked(f"has {listed:,} objects"))
    found = _has_javascript(reader, max(1, _MAX_PDF_SEARCH_BYTES // max(size, 1)))
    if found is True:
        raise LoadError("PDF contains JavaScript: refused as active content")
    if found is not False:
        raise LoadError(_unchecked(found))


def _unchecked(why: str) -> str:
    return (
        f"PDF {why}: the check for JavaScript could not finish (limits: {_MAX_PDF_OBJECTS:,} "
        "objects, a cross-reference table that finds them); refused as possibly active content"
    )


def _has_javascript(
    reader: PdfReader, max_searches: int, limit: int = _MAX_PDF_OBJECTS
) -> bool | str:
    """Any JavaScript action anywhere in the object graph: document-level name tree, open
    action, page, annotation or form-field actions all use /JS or /S /JavaScript. A string says
    why the walk stopped before it could tell, which must never read as "no JavaScript"."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    seen: set[tuple[int, int]] = set()
    searches = 0
    stack: list[object] = [reader.trailer]
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            key = (node.idnum, node.generation)
            if key in seen:
                continue
            if len(seen) >= limit:
                return f"has more than {limit:,} objects"
            seen.add(key)
            listed = reader.xref.get(node.generation, {}).get(node.idnum)
            packed = node.generation == 0 and node.idnum in reader.xref_objStm
            node = node.get_object()
            # pypdf searched the file when the object was unlisted or not where listed
            if not packed and (listed is None or reader.xref[key[1]].get(key[0]) != listed):
                searches += 1
                if searches > max_searches:
                    return f"has over {max_searches:,} objects its cross-reference table misplaces"
        if isinstance(node, DictionaryObject):
            if "/JS" in node or "/JavaScript" in node or node.get("/S") == "/JavaScript":
                return True
            stack.extend(v for k, v in node.items() if k != "/Parent")
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return False


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise LoadError("corrupt DOCX (not a zip archive)") from None
    if inflated > _MAX_DOCX_INFLATED or inflated > _MAX_DOCX_RATIO * max(len(data), 1):
        raise LoadError(f"DOCX inflates to {inflated} bytes: refused as a possible zip bomb")


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    import docx
    from docx.table import Table

    from ingest import docx_text  # python-docx, like each format's library, loads on first use
    from ingest.docx_numbering import ListNumbering

    _check_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError/ValueError/lxml errors on bad parts
        raise LoadError(f"corrupt DOCX: {type(exc).__name__}: {exc}") from None
    styles = {s.style_id: s.name or "" for s in document.styles if s.style_id}
    body = docx_text.BodyText(ListNumbering(document))
    blocks: list[str] = []
    headings: list[tuple[int, str]] = []
    title = (document.core_properties.title or "").strip()
    offset = 0
    for element in docx_text.blocks(document.element.body):
        if element.tag == docx_text.P:
            line = body.paragraph(element)
            style = styles.get(element.style or "", "")
            if line and (style.startswith("Heading") or style == "Title"):
                headings.append((offset, line))
                title = title or (line if style == "Title" else "")
        else:
            line = "\n".join(body.table_rows(Table(element, document))).strip()
        if line:
            blocks.append(line)
            offset += len(line) + 2
    text = "\n\n".join(blocks)
    return LoadedDocument(text=text, title=title or _fallback_title(path), headings=headings)


_HTML_DROP = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
    "form", "button", "svg", "iframe", "object", "embed", "head",
)  # fmt: skip
_HTML_BLOCK = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "tr",
        "td",
        "th",
        "pre",
        "blockquote",
        "figure",
        "figcaption",
        "caption",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "br",
        "hr",
        "address",
        "details",
        "summary",
    ]
)
# Content a data table's cell does not hold: a table holding it lays out a page.
_LAYOUT_CONTENT = ["table", "ul", "ol", "dl", "pre", "h1", "h2", "h3", "h4", "h5", "h6"]
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# 0, 0px, 0.0em, .0pt, 0%: a length or number that is zero, whatever its unit.
_CSS_ZERO = re.compile(r"[+-]?(?:0+(?:\.0*)?|\.0+)(?:[a-z]+|%)?")


def _invisible_style(style: str) -> bool:
    """An inline style that hides its element's text from a reader (display:none,
    visibility:hidden, opacity:0, font-size:0, also as in `font: 0/0 a`): such text is a classic
    carrier of prompt injection and keyword stuffing, so it is never indexed."""
    for declaration in _CSS_COMMENT.sub("", style).split(";"):
        name, colon, value = declaration.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        value = value.lower().replace("!important", "").strip()
        if (
            (name == "display" and value == "none")
            or (name == "visibility" and value in ("hidden", "collapse"))
            or (name in ("opacity", "font-size") and _CSS_ZERO.fullmatch(value))
            or (name == "font" and _CSS_ZERO.fullmatch(_font_size(value)))
        ):
            return True
    return False


def _font_size(shorthand: str) -> str:
    """The size in a `font` shorthand: before the '/line-height', else before the family."""
    words = shorthand.replace("/", " / ").split()
    if "/" in words:
        return words[words.index("/") - 1] if words.index("/") else ""
    return words[-2] if len(words) >= 2 else ""


# A footnote's mark, by the role HTML gives it (DPUB-ARIA: docutils, pandoc) or by the classes
# Sphinx, Python-Markdown, markdown-it (our Markdown reader) and MediaWiki write.
_FOOTNOTE_MARKS = (
    '[role="doc-noteref"], a.footnote-reference, a.footnote-ref, sup.footnote-ref, sup.reference'
)
# A footnote's own label and links back to its marks ("1", "[1]", "↩", "^"): with the marks gone
# they point nowhere, and a refusal's closest passage read "12\n\nOther urgency values…".
_FOOTNOTE_LABELS = (
    '.footnote .label, .footnote .backrefs, [role="doc-backlink"], a.footnote-backref,'
    " .mw-cite-backlink"
)
_CLOSING = frozenset(",.;:!?)")
# Footnotes are the document's text, though docutils and Sphinx 7 write them as <aside>, which is
# otherwise a page's sidebar: Debian Policy's footnotes hold rules ("-fPIC … is required for most
# architectures"), and its reST sources lost them, as the Python tutorial's pages did theirs.
_FOOTNOTES = (
    'aside.footnote, aside.footnote-list, aside[role="doc-footnote"], aside[role="doc-endnotes"]'
)


def load_html(path: Path, data: bytes) -> LoadedDocument:
    """Main text only: boilerplate, scripts and hidden elements are dropped, not indexed."""
    return _html_document(path, _decode_text(data))


def _html_document(path: Path, html: str, meta_title: str | None = None) -> LoadedDocument:
    """An HTML page's text, headings and title: its <title>, else its first <h1>, else
    `meta_title` (a Markdown file's front matter), else its first heading, else the file name."""
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    soup = BeautifulSoup(html, "html.parser")
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_HTML_DROP):
        if not tag.decomposed and not tag.css.match(_FOOTNOTES):
            tag.decompose()
    for tag in soup.find_all("a", class_="headerlink"):  # Sphinx/MkDocs "¶" permalink anchors
        tag.decompose()
    # A footnote's mark is no part of its sentence, and quoted it read as a citation of ours:
    # "…on some of the supported architectures. [1] Any exception…". The footnote itself stays
    # where the page shows it, without its label.
    for tag in soup.select(_FOOTNOTE_LABELS):
        tag.decompose()
    for tag in soup.select(_FOOTNOTE_MARKS):
        before, after = tag.previous_sibling, tag.next_sibling
        # "the Cheese Shop [1], is": no space is left before the comma
        if (
            isinstance(before, NavigableString)
            and isinstance(after, NavigableString)
            and after[:1] in _CLOSING
        ):
            before.replace_with(before.rstrip())
        tag.decompose()
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag) or tag.decomposed:
            continue
        attrs = tag.attrs or {}
        if (
            "hidden" in attrs
            or str(attrs.get("aria-hidden", "")).lower() == "true"
            or _invisible_style(str(attrs.get("style", "")))
        ):
            tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.find(role="main") or soup.body or soup

    blocks: list[str] = []
    headings: list[tuple[int, str]] = []
    code: list[tuple[int, int]] = []
    buffer: list[str] = []
    marker: list[str] = []  # a list item's marker, waiting for the item's first line
    offset = 0

    def flush(heading: bool = False) -> None:
        line = " ".join("".join(buffer).split())
        buffer.clear()
        if not line:
            return
        if marker:
            line = f"{marker.pop()} {line}"
        emit(line, heading)

    def emit(block: str, heading: bool = False) -> None:
        nonlocal offset
        if heading:
            headings.append((offset, block))
        blocks.append(block)
        offset += len(block) + 2

    skip = _markup_strings()
    lists: dict[int, dict[int, str]] = {}  # each list's markers, by the list's id
    h1s: list[str] = []

    def item_marker(item: Tag) -> str:
        parent = item.parent
        if parent is None:
            return BULLET
        if id(parent) not in lists:
            items = [li for li in parent.children if isinstance(li, Tag) and li.name == "li"]
            lists[id(parent)] = _html_list_markers(items, parent if parent.name == "ol" else None)
        return lists[id(parent)].get(id(item), BULLET)

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, skip):
                    buffer.append(str(child))
            elif isinstance(child, Tag):
                if child.name == "table" and not _layout_table(child):
                    flush()
                    for caption in child.find_all("caption", recursive=False):
                        buffer.append(_inline_text(caption))
                        flush()
                    if rows := _html_table_rows(child):
                        emit("\n".join(rows))
                elif child.name == "pre":
                    flush()
                    if block := _preformatted(child, skip):
                        code.append((offset, offset + len(block)))
                        emit(block)
                elif child.name in _HTML_BLOCK:
                    flush()
                    if child.name == "li":
                        marker[:] = [item_marker(child)]
                    walk(child)
                    count = len(headings)
                    flush(heading=child.name in {"h1", "h2", "h3", "h4", "h5", "h6"})
                    if child.name == "h1" and len(headings) > count:
                        h1s.append(headings[-1][1])
                    if child.name == "li":
                        marker.clear()  # an empty item leaves no marker behind
                else:
                    walk(child)

    assert isinstance(root, Tag)
    walk(root)
    flush()
    text = "\n\n".join(blocks)
    first = next((h for _, h in headings), "")
    title = page_title or next(iter(h1s), "") or meta_title or first or _fallback_title(path)
    return LoadedDocument(text=text, title=title, headings=headings, code=code)


_BLANK_RUN = re.compile(r"\n{3,}")


def _preformatted(pre: Tag, skip: tuple[type, ...]) -> str:
    """A <pre> block as a browser shows it, a line a line: run together, a listing read as one
    sentence (">>> def divide(x, y): ... try: ... result = x / y"), which is what quotes showed.
    Trailing spaces and the blank lines around it go; a blank line inside stays, as one."""
    from bs4.element import NavigableString

    raw = "".join(
        str(s)
        for s in pre.descendants
        if isinstance(s, NavigableString) and not isinstance(s, skip)
    )
    lines = [line.rstrip() for line in raw.expandtabs(8).splitlines()]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


def _layout_table(table: Tag) -> bool:
    """A table that lays out a page rather than holding data (a Sphinx index's columns of lists,
    a table of tables, role="presentation"): its content is read as blocks, as before."""
    role = str(table.get("role", "")).lower()
    return role in ("presentation", "none") or table.find(_LAYOUT_CONTENT) is not None


def _html_table_rows(table: Tag) -> list[str]:
    """One line per row of an HTML table, its cells joined by " | " as the DOCX and PDF readers
    write a row, so a row reads whole whatever the format ("Annual leave | 27 days"), where each
    cell stood as a paragraph of its own. A nested table's rows are its cell's text."""
    rows = []
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:
            continue
        cells = [
            " ".join(_inline_text(cell).split())
            for cell in row.find_all(["td", "th"], recursive=False)
        ]
        if any(cells):
            rows.append(row_line(cells))
    return rows


@functools.cache
def _markup_strings() -> tuple[type, ...]:
    """The strings of an HTML tree that are markup, not text: comments, declarations, doctypes,
    processing instructions."""
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    return (Comment, Declaration, Doctype, ProcessingInstruction)


def _inline_text(node: Tag) -> str:
    """A cell's text as a browser runs it together: inline elements joined as they stand
    ("<code>true</code>" in quotes stays "true" in quotes), a space where a block (a paragraph,
    a line break) begins or ends; comments left out."""
    from bs4.element import NavigableString, Tag

    parts: list[str] = []
    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, _markup_strings()):
                parts.append(str(child))
        elif isinstance(child, Tag):
            block = child.name in _HTML_BLOCK
            parts.extend((" " if block else "", _inline_text(child), " " if block else ""))
    return "".join(parts)


def _html_list_markers(items: list[Tag], ordered: Tag | None) -> dict[int, str]:
    """The marker a browser shows before each list item (by `id`): "•" in a <ul>, else its
    number in the <ol> `ordered`, after its `start`, `reversed` and `type` and any item's
    `value`. Made once per list, so that a list of many items is read in linear time."""
    if ordered is None:
        return {id(li): BULLET for li in items}
    step = -1 if ordered.has_attr("reversed") else 1
    number = _html_int(ordered.get("start"), len(items) if step < 0 else 1)
    markers = {}
    for li in items:
        number = _html_int(li.get("value"), number)
        fmt = HTML_TYPES.get(str(li.get("type") or ordered.get("type") or "1"), "decimal")
        markers[id(li)] = f"{format_number(number, fmt)}."
        number += step
    return markers


def _html_int(value: object, default: int) -> int:
    try:
        return max(-(10**9), min(int(str(value).strip()), 10**9)) if value is not None else default
    except ValueError:
        return default


LOADERS: dict[str, Callable[[Path, bytes], LoadedDocument]] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".rst": load_rst,
    ".txt": load_text,
}


def loader_for(path: Path) -> Callable[[Path, bytes], LoadedDocument] | None:
    if path.name.lower().endswith(".rst.txt"):  # Sphinx's copy of a page's source
        return load_rst
    return LOADERS.get(path.suffix.lower())


def sniff(path: Path, data: bytes) -> None:
    """The content must be what the name says: a renamed binary fails here, with a clear reason."""
    suffix = path.suffix.lower()
    head = data[:8]
    if suffix == ".pdf" and not data[:1024].lstrip().startswith(b"%PDF-"):
        raise LoadError("not a PDF file (no %PDF- header)")
    if suffix == ".docx" and not head.startswith(b"PK\x03\x04"):
        raise LoadError("not a DOCX file (not a zip archive)")
    if suffix not in (".pdf", ".docx") and b"\x00" in data[:65536]:
        raise LoadError("binary content in a text file")


def load(path: Path, data: bytes) -> LoadedDocument:
    """Extract a document; raises LoadError for empty, corrupt or unsupported content."""
    loader = loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type '{path.suffix or path.name}'")
    if not data:
        raise LoadError("empty file")
    sniff(path, data)
    try:
        document = loader(path, data)
    except RecursionError:  # the HTML reader walks the tree by recursion
        raise LoadError("elements nested too deeply to read") from None
    if not document.text.strip():
        raise LoadError("no text could be extracted")
    return document
