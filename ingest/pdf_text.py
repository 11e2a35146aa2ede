"""A PDF's text, page by page, as a person reads it: words spaced, lines of a paragraph joined,
hyphenation undone, and the running header and footer that repeat on every page left out.

pypdf (which still does the loader's security checks) drops the spaces between words on
justified lines of TeX-made PDFs ("Updatesareprocessedatleastonceamonth"): such words are
invisible to keyword search and the embedder, and quotes from them are unreadable. PDFium, through
pypdfium2, places spaces by glyph position and marks soft hyphens, and reads a 114-page manual in
half a second.

The headings too, so that a PDF citation names its section as a Markdown, HTML or DOCX one does:
the author's own outline (bookmarks) where the PDF has one, as LaTeX, Sphinx and most word
processors write them; otherwise the short lines set larger than the body text (by the font size
PDFium reports for each character, times the text matrix's scale), and the short lines that
start with a section number and a capitalised title ("4.3.3 Reauthentication"), whatever their
type.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.abbreviations import ends_no_sentence
from ingest.list_markers import item_marker
from ingest.pdf_hyphens import LineEndHyphens, hyphenates
from ingest.pdf_paragraphs import (
    SENTENCE_END,
    Break,
    full_length,
    lines_at,
    mark_paragraph_ends,
    page_breaks,
    paragraph_spacing,
    placed,
    placed_lines,
)
from ingest.pdf_tables import table_rows
from ingest.section_titles import LEADING_NUMBER, SECTION_NUMBER, title_key

if TYPE_CHECKING:
    import pypdfium2 as pdfium

# Word's second- and third-level bullets are glyphs of Courier New ("o") and Wingdings ("§"),
# which a text layer reports as those letters: at the start of a line, before a capitalised
# word, they are bullets (not "§ 105", a section sign and its number, nor the article of a
# Portuguese line, "o carro").
_WORD_BULLET = re.compile(r"^([ \t]*)[o§](?=[ \t]+(\w))", re.M)
_BULLET = item_marker()
_FULL_STOP = re.compile(r"[.!?][\"'”’)\]]*(?:\s+|$)")
# A sentence carried back over a page break: the page ends in a prose line of at least this
# many words, and the continuation's full stop comes within this many characters.
_CARRY_MIN_WORDS = 6
_CARRY_CHARS = 400
# A line ending inside a web address, after a character typesetters break addresses at (LaTeX's
# url package, Word and LibreOffice alike): the address may go on in the next line's first word.
_ADDRESS_AT_END = re.compile(r"(?:https?://|www\.)\S*[-/._?=&#~%]$")
# A word that can only be part of an address: a separator inside it ("replacing_keys.html",
# "security/faq#contact") or a capital after its first letter (a wiki page, "DebianMaintainer").
_ADDRESS_PART = re.compile(r"\S*(?:\w[/._#?=&%~]\w|[a-z][A-Z])\S*")
# A table of contents' line: a title, dot leaders and a page number ("9.8.1 debian-policy . . . .
# 104", LaTeX; "A.2 Length.......67", Word). Navigation, not content: the headings it lists are read
# where they stand, and its leaders are word pieces, each one (the Developer's Reference had 75
# chunks of 192 word pieces that were four fifths dots, one of them in the five passages
# retrieved for a quarter of its questions). So it is left out of the text. Such a line is short;
# a longer one is not tried (the pattern backtracks over a run of dots).
_CONTENTS_MAX_CHARS = 300
_CONTENTS_LINE = re.compile(
    r"^[ \t]*\S.*?(?:[ \t]?\.){4,}[ \t]*(?:\d{1,4}|[ivxlcdm]{1,8})[ \t]*$", re.I
)
_RUNNING_MAX_CHARS = 100  # headers and footers are short lines
_RUNNING_MIN_SHARE = 0.5  # a first/last line on at least half the pages is a running header/footer
_RUNNING_LAYERS = 3  # a header or footer of up to 3 x 2 lines
# A page number before or after a running title: "44 Chapter 5. Managing Packages", "5.8. Handling
# bugs 41" (a bare number is a running line already).
_PAGE_NUMBER_FIRST = re.compile(r"[ \t]*(\d{1,4})[ \t]+\S")
_PAGE_NUMBER_LAST = re.compile(r"\S[ \t]+(\d{1,4})[ \t]*$")
_HEADING_MAX_CHARS = 80  # a heading is one short line
# A heading line at least this long may have wrapped onto the next: shorter ones ("Leave
# Policy") end where they end, and the line after them is a subtitle or the text.
_WRAPS_CHARS = 30
# Set at least this much larger than the body text. Bold alone is not enough: running headers,
# "CHAPTER" labels and emphasised lines are bold at the text's size too.
_LARGER = 1.05
_STYLE_SAMPLE = 12  # characters of a line whose style is read
# Bookmarks read at most (a 1,000-page manual has a few thousand): each is looked for on its page,
# and a hostile outline must not make that search unbounded.
_MAX_BOOKMARKS = 10_000


# A line that could be a heading: (page index, its text, its type size, its line number).
_Styled = tuple[int, str, float, int]


@dataclass(frozen=True)
class PdfText:
    """A PDF's cleaned text and headings."""

    pages: list[str]  # the cleaned text of each page ("" for a page without text)
    headings: list[tuple[int, int, str]]  # (page index, offset in its text, heading), in order


def page_texts(data: bytes, expected_pages: int) -> PdfText:
    """Cleaned text of each page, and the headings (from the outline, else the type styles)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        typeset = hyphenates(_metadata(document))
        outline = _outline(document)
        raw: list[str] = []
        rows: list[set[str]] = []  # each page's table rows, as lines
        breaks: list[list[Break]] = []
        styled: list[_Styled] = []
        body: Counter[float] = Counter()
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
                if not outline:
                    styled += _styled_lines(index, text, textpage, body)
                found = table_rows(placed_lines(text, textpage), textpage)
                lines = [line for line in found if not _contents_line(line.text)]
                raw.append("\n".join(line.text for line in lines))
                rows.append({line.text.strip() for line in lines if line.row})
                breaks.append(page_breaks(lines))
            finally:
                textpage.close()
                page.close()
    finally:
        document.close()
    if len(raw) != expected_pages:
        raise ValueError(f"page count differs between readers ({len(raw)} vs {expected_pages})")
    wide = paragraph_spacing(breaks)
    if wide is not None:
        raw = [mark_paragraph_ends(text, b, wide) for text, b in zip(raw, breaks, strict=True)]
    hyphens = LineEndHyphens(raw, typeset)
    pages = [_lines(hyphens.resolve(text)) for text in raw]
    running = _running_lines(pages)
    distance = _page_number_distance(pages)
    headings = outline or _larger_than_body(styled, body, running)
    titles: list[set[str]] = [set() for _ in pages]  # each page's headings, as lines compare
    for index, heading in headings:
        if 0 <= index < len(pages):
            titles[index].add(title_key(heading))
    texts = _carry_sentences(
        [
            _reflow(
                _drop_running(lines, running, None if distance is None else index + distance),
                t,
                spaced=wide is not None,
                rows=r,
            )
            for index, (lines, t, r) in enumerate(zip(pages, titles, rows, strict=True))
        ]
    )
    return PdfText(texts, _placed(headings, texts))


def _contents_line(line: str) -> bool:
    return len(line) <= _CONTENTS_MAX_CHARS and _CONTENTS_LINE.match(line) is not None


def _carry_sentences(texts: list[str]) -> list[str]:
    """A sentence that runs over a page break, ended on the page where it began.

    Passages never cross a page (so that a citation's page is the page of all its words), so
    such a sentence was two fragments: one without a full stop, which is never quoted, and one
    starting mid-sentence. Where a page ends in the middle of a prose line and the next begins
    with its lower-case continuation, the continuation up to its first full stop (within the
    next page's first paragraph and `_CARRY_CHARS`) moves to the end of the page before; the
    sentence is cited on the page where it starts. Page numbers, contents lines and headings
    at a page's edge end in digits or are short, and are left alone."""
    out = list(texts)
    for i in range(len(out) - 1):
        last = out[i].rstrip().rsplit("\n", 1)[-1]
        following = out[i + 1].lstrip()
        paragraph = following.split("\n\n", 1)[0]
        if (
            len(last.split()) < _CARRY_MIN_WORDS
            or last.endswith((*SENTENCE_END, ","))
            or last[-1:].isdigit()
            or not following[:1].islower()
            or len(paragraph.split("\n", 1)[0].split()) < 3
        ):
            continue
        stop = _sentence_stop(paragraph[:_CARRY_CHARS])
        if stop is None:
            continue
        head = out[i].rstrip()
        out[i] = head + _joint(head, following) + following[:stop]
        out[i + 1] = following[stop:].lstrip()
    return out


def _sentence_stop(text: str) -> int | None:
    """Where the first sentence of `text` ends (after its full stop and closing quotes), not
    at an abbreviation ("e.g.") or an initial; None if it does not end in `text`."""
    for match in _FULL_STOP.finditer(text):
        if not ends_no_sentence(text[: match.start() + 1].rsplit(None, 1)[-1]):
            return match.start() + len(match.group().rstrip())
    return None


def _placed(headings: list[tuple[int, str]], texts: list[str]) -> list[tuple[int, int, str]]:
    """Each heading at its offset: where it stands as a line of its own on its page (after a
    section number, "2.1 Getting started"), at or after the heading before it. A heading not
    found so is left out rather than guessed."""
    placed: list[tuple[int, int, str]] = []
    page, at = -1, 0
    for index, heading in headings:
        if not 0 <= index < len(texts):
            continue
        if index != page:
            page, at = index, 0
        words = r"\s+".join(map(re.escape, heading.split()))
        line = re.compile(rf"^[ \t]*{SECTION_NUMBER.pattern}?{words}[ \t]*$", re.I | re.M)
        found = line.search(texts[index], at)
        if found:
            placed.append((index, found.start(), heading))
            at = found.end()
    return placed


def _metadata(document: pdfium.PdfDocument) -> dict[str, str]:
    """The info dictionary's text fields; a damaged one reads as empty, never as a failure."""
    try:
        found = document.get_metadata_dict(skip_empty=True)
        return {str(key): str(value) for key, value in found.items()}
    except Exception:  # pdfium's decoding of a hostile info dictionary
        return {}


def _outline(document: pdfium.PdfDocument) -> list[tuple[int, str]]:
    """The bookmarks that point at a page, each a (page index, title), in the outline's order."""
    out: list[tuple[int, str]] = []
    for bookmark in itertools.islice(document.get_toc(), _MAX_BOOKMARKS):
        destination = bookmark.get_dest()
        index = destination.get_index() if destination is not None else None
        title = " ".join(bookmark.get_title().split())
        if index is not None and title and len(title) <= _HEADING_MAX_CHARS * 2:
            out.append((index, title))
    return out


def _styled_lines(
    index: int, text: str, textpage: pdfium.PdfTextPage, body: Counter[float]
) -> list[_Styled]:
    """The page's short lines that could be headings, each with its type size and its line's
    number on the page; the sizes of the first characters of its long lines are counted into
    `body`, the text's size."""
    import pypdfium2.raw as pdfium_c

    matrix = pdfium_c.FS_MATRIX()

    def style(at: int) -> float:
        """The size as set on the page: the font's size times the text matrix's vertical scale
        (word processors often set every font at size 1 and scale it by the matrix)."""
        size = float(pdfium_c.FPDFText_GetFontSize(textpage.raw, at))
        if pdfium_c.FPDFText_GetMatrix(textpage.raw, at, ctypes.byref(matrix)):
            size *= math.hypot(matrix.c, matrix.d)
        return round(size, 1)

    if not placed(text, textpage):
        return []
    out: list[_Styled] = []
    for number, (start, line) in enumerate(lines_at(text)):
        stripped = line.strip()
        at = [start + i for i, c in enumerate(line) if not c.isspace()][:_STYLE_SAMPLE]
        if not at:
            continue
        if len(stripped) > _HEADING_MAX_CHARS:
            body.update(style(i) for i in at)
        elif _could_be_heading(stripped):
            styles = Counter(style(i) for i in at)
            out.append((index, " ".join(stripped.split()), styles.most_common(1)[0][0], number))
    return out


def _could_be_heading(line: str) -> bool:
    """A heading starts with a capital or a section number, has words, and is not a sentence, a
    list item or a contents line (which ends in its page number)."""
    return (
        (line[:1].isupper() or line[:1].isdigit())
        and any(c.isalpha() for c in line)
        and not line.endswith((*SENTENCE_END, ","))
        and not _BULLET.match(line)
        and not re.search(r"(?:\s|\.)\d+$", line)
    )


def _numbered_heading(line: str) -> bool:
    """A section number and a capitalised title on a short line of its own: "4.3.4 Security
    Controls", "10 Usability Considerations" (not "30 days of inactivity", nor a list item, nor
    "100 Bureau Drive" or "2017 Annual Report": sections are not numbered in hundreds)."""
    number = LEADING_NUMBER.match(line)
    return (
        number is not None
        and not line[:3].isdigit()
        and line[number.end() : number.end() + 1].isupper()
        and len(line) <= _HEADING_MAX_CHARS
        and _could_be_heading(line)
    )


def _larger_than_body(
    styled: list[_Styled], body: Counter[float], running: set[str]
) -> list[tuple[int, str]]:
    """The short lines set larger than the body text, and the numbered ones whatever their
    type (standards set "4.3.3 Reauthentication" in bold a size smaller than the text); running
    headers left out. A long heading wrapped onto the next line, at the same size and without a
    section number of its own, is one heading ("16.1.1 Applicable Standards from the HITRUST
    Common" + "Security Framework")."""
    if not body:
        return []
    size = body.most_common(1)[0][0]
    out: list[tuple[int, str]] = []
    last: tuple[int, int, float] | None = None  # (page, line number, size) of a larger heading
    for index, line, line_size, number in styled:
        larger = line_size >= size * _LARGER
        if not (larger or _numbered_heading(line)) or _key(line) in running:
            continue
        if (
            larger
            and last == (index, number - 1, line_size)
            and len(out[-1][1]) >= _WRAPS_CHARS
            and not LEADING_NUMBER.match(line)
        ):
            out[-1] = (index, f"{out[-1][1]} {line}")
        else:
            out.append((index, line))
        last = (index, number, line_size) if larger else None
    return out


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _WORD_BULLET.sub(lambda m: m[1] + "•" if m[2].isupper() else m[0], text)
    return [line.rstrip() for line in text.split("\n")]


def _key(line: str) -> str:
    """Page numbers and dates vary from page to page; the words of a running line do not."""
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _edges(lines: list[str]) -> list[str]:
    """The first and last two lines of a page that could be a running header or footer."""
    content = [line for line in lines if line.strip() and len(line) <= _RUNNING_MAX_CHARS]
    return content[:2] + content[-2:]


def _running_lines(pages: list[list[str]]) -> set[str]:
    """The keys of the lines at the top or bottom of at least half the pages. Found a layer at a
    time: a header of four lines (title, subtitle, page number, a notice) shows its inner lines
    at the page's edge only once the outer ones are peeled off. A bare page number counts."""
    needed = _pages_needed(pages)
    if needed is None:
        return set()
    running: set[str] = set()
    for _ in range(_RUNNING_LAYERS):
        peeled = [_drop_running(lines, running) for lines in pages]
        counts = Counter(key for lines in peeled for key in {_key(line) for line in _edges(lines)})
        found = {
            key
            for key, n in counts.items()
            if n >= needed and (key.strip("# ") or key == "#") and key not in running
        } | (_numbered_running(peeled, needed) - running)
        if not found:
            break
        running |= found
    return running


def _numbered_running(pages: list[list[str]], needed: float) -> set[str]:
    """The keys of the page-edge lines that carry the page's own printed number beside a title
    that changes with the chapter or section: a book's "44 Chapter 5. Managing Packages" on even
    pages and "5.8. Handling bugs 41" on odd ones. No one such line is on half the pages, but
    the printed number runs a fixed distance from the page's index on most of them."""
    numbered, usual = _numbered_edges(pages, needed)
    if usual is None:
        return set()
    at_distance = [(_key(line), last) for at, line, last in set(numbered) if at == usual]
    # A heading may begin with a number that happens to be its page's ("1 Introduction" on page 1
    # of a manual of one-page chapters), but none ends with it; a running title beginning with
    # the page number is one when it runs over two pages at least.
    pages_with = Counter(key for key, _ in at_distance)
    return {key for key, last in at_distance if last or pages_with[key] >= 2}


def _numbered_edges(
    pages: list[list[str]], needed: float
) -> tuple[list[tuple[int, str, bool]], int | None]:
    """Each page-edge line with a number first or last, as (the number - the page's index, the
    line, whether the number is last); and the distance most pages' numbers run at, where at
    least `needed` pages agree on one."""
    numbered: list[tuple[int, str, bool]] = []
    pages_at: Counter[int] = Counter()  # how many pages have such a line at each distance
    for index, lines in enumerate(pages):
        distances = set()
        for line in set(_edges(lines)):
            first = _PAGE_NUMBER_FIRST.match(line)
            found = first or _PAGE_NUMBER_LAST.search(line)
            if found:
                distance = int(found[1]) - index
                distances.add(distance)
                numbered.append((distance, line, first is None))
        pages_at.update(distances)
    if not pages_at:
        return numbered, None
    usual, count = pages_at.most_common(1)[0]
    return numbered, usual if count >= needed else None


def _page_number_distance(pages: list[list[str]]) -> int | None:
    """How far the printed page number runs from the page's index, where most pages print it
    beside a running title: a page that prints it alone (a chapter's first, with no running
    head) shows it as a bare number, which a page then drops only where it is its own number
    ("3" at the foot of the Developer's Reference's page 11, but not a footnote's "1")."""
    needed = _pages_needed(pages)
    return None if needed is None else _numbered_edges(pages, needed)[1]


def _pages_needed(pages: list[list[str]]) -> float | None:
    """On how many pages a line or a page number's distance must recur to be the document's
    running matter: half of them, and three at least. None for a document too short to tell."""
    return None if len(pages) < 3 else max(3, _RUNNING_MIN_SHARE * len(pages))


def _drop_running(lines: list[str], running: set[str], number: int | None = None) -> list[str]:
    """The page without its running lines, peeled off its top and bottom a layer at a time (a
    line inside the page that happens to read like one stays), and without its own printed
    `number` standing alone at its edge."""
    own = None if number is None else str(number)
    while True:
        edges = set(_edges(lines))
        kept = [
            line
            for line in lines
            if not (line in edges and (_key(line) in running or line.strip() == own))
        ]
        if len(kept) == len(lines):
            return kept
        lines = kept


def _join_wrapped(lines: list[str], headings: Collection[str]) -> list[str]:
    """A heading wrapped onto a second line, joined back into one line: the outline (or the
    type sizes) name "16.1.1 Applicable Standards from the HITRUST Common Security Framework",
    the page sets it as two lines."""
    out: list[str] = []
    for line in lines:
        if (
            out
            and line.strip()
            and out[-1].strip()
            and title_key(out[-1]) not in headings
            and title_key(f"{out[-1]} {line}") in headings
        ):
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return out


def _joint(line: str, following: str) -> str:
    """What joins a line to the next line of its paragraph: nothing inside a word broken at a
    hyphen, or inside a web address broken at the line's end; a space otherwise."""
    if line.endswith("-") and following[:1].islower():
        return ""
    if not (_ADDRESS_AT_END.search(line) and following[:1].isalnum()):
        return " "
    if not line.endswith(("/", ".")):  # "…pkgreport.cgi?" "users=…", "…IEC_2382-" "37_2017.zip"
        return ""
    # "…debian.org/" "replacing_keys.html.", "…/NIST." "SP.800-63a.", not "…/MailingLists/" "for".
    word = following.split(None, 1)[0]
    if line.endswith("/"):
        return "" if _ADDRESS_PART.fullmatch(word) else " "
    # "https://sso.debian." "org.": after a full stop, the text goes on with a capital ("…org/."
    # "You") or a section number ("…/MemberBenefits." "4.11. Retiring").
    if word[:1].isdigit():
        return " "
    return "" if word[:1].islower() or _ADDRESS_PART.fullmatch(word) else " "


def _reflow(
    lines: list[str],
    headings: Collection[str] = (),
    spaced: bool = False,
    rows: Collection[str] = (),
) -> str:
    """Join the lines of a paragraph with spaces; a short line ends its paragraph (headings,
    last lines), a bullet or numbered item starts a line of its own, and a line that is one of
    the page's `headings` is a paragraph of its own (a numbered one, "2.3 Registering as a
    Debian member", would otherwise join the full line before it; a wrapped one is joined back
    first), as is any numbered heading after a finished sentence ("…timeout. 4.3.4 Security
    Controls"). A full line that ends a sentence ends its paragraph when the next begins with
    a capital, unless the document is `spaced`: its paragraph ends are then the empty lines
    `mark_paragraph_ends` wrote (`ingest/pdf_paragraphs.py`). A table's `rows` each stand on
    a line of their own, one after another (`ingest/pdf_tables.py`)."""
    if headings:
        lines = _join_wrapped(lines, headings)
    lengths = [len(line.strip()) for line in lines if line.strip()]
    if not lengths:
        return ""
    # A table's rows are as long as their cells together: they say nothing of how long the
    # page's full lines are.
    prose = [len(line.strip()) for line in lines if line.strip() and line.strip() not in rows]
    full = full_length(prose or lengths)
    out: list[str] = []
    previous = ""
    was_heading = False
    for line in lines:
        text = line.strip()
        if not text:
            if out and out[-1] != "\n\n":
                out.append("\n\n")
            previous = ""
            continue
        heading = bool(headings) and title_key(text) in headings
        if previous:
            if heading or was_heading:
                out.append("\n\n")
            elif _BULLET.match(text) or (previous in rows and text in rows):
                out.append("\n")  # an item, or a table's next row (`ingest/pdf_tables.py`)
            elif len(previous) >= 0.75 * full and (
                not previous.endswith(SENTENCE_END)
                or (not _numbered_heading(text) and (spaced or not text[:1].isupper()))
            ):
                out.append(_joint(previous, text))
            else:
                out.append("\n\n")
        out.append(text)
        previous, was_heading = text, heading
    return "".join(out).strip()
