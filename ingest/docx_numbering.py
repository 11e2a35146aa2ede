"""The numbers and bullets Word shows before list paragraphs, which a DOCX does not store as text.

Word computes "1.", "b)", "2.3" or "iv." from numbering.xml as it lays the document out, and
python-docx exposes none of it (python-openxml/python-docx#471, open since 2018): `paragraph.text`
is the item without its number. A policy that says "as in step 3 above", or a question about
"the second requirement", then has nothing to point at, and a bullet item without a full stop reads
as a stray line rather than a list item. `ListNumbering` replays Word's counting over the body's
paragraphs in order and returns each one's marker.

What it follows (ECMA-376 part 1, 17.9): a paragraph's `numPr` (its own, else its style's, through
`basedOn`); `num` -> `abstractNum`, one hop of `numStyleLink`; per-level `start`, `numFmt`,
`lvlText` ("%1.%2."), `isLgl`, `lvlRestart`; a `num`'s `lvlOverride/startOverride`, applied at its
first item (how pandoc and Word restart a list). Numbers count per abstract list, as Word's do, so
two `num`s of one `abstractNum` continue each other unless one restarts. Bullets, whatever glyph
their font draws, become "•". List items in table cells count in reading order too. Not
followed: field-code numbering (SEQ, LISTNUM) and a style's list level named by the level's
`pStyle` rather than the style's own `ilvl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docx.oxml.ns import nsmap

from ingest.list_markers import BULLET, format_number

if TYPE_CHECKING:
    from docx.document import Document

_W = "{" + nsmap["w"] + "}"
_LEVELS = 9  # Word's lists have levels 0-8
_MAX_NUMBER = 10**9  # a start value is at most this


def _val(element: Any, tag: str) -> str | None:
    """The w:val of `element`'s child `tag`, or None."""
    child = element.find(_W + tag) if element is not None else None
    return None if child is None else child.get(_W + "val")


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, min(int(value), _MAX_NUMBER)) if value is not None else default
    except ValueError:
        return default


@dataclass(frozen=True)
class _Level:
    fmt: str
    text: str  # lvlText: "%1." or "%1.%2)"; %k is level k-1's current number
    start: int
    legal: bool  # isLgl: every number in lvlText as decimal ("1.1" under a roman "I.")
    restart: int  # lvlRestart: this level restarts after an item of a level below this (0-based)


class ListNumbering:
    """Each list paragraph's marker, counted in reading order: call `marker` once per
    paragraph, in document order (the numbers depend on every list item before it)."""

    def __init__(self, document: Document) -> None:
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError):  # no numbering part: no lists
            root = None
        self._styles = {s.style_id: s for s in document.styles if s.style_id}
        self._abstract: dict[str, dict[int, _Level]] = {}
        self._links: dict[str, str] = {}  # abstractNum id -> numStyleLink style id
        self._nums: dict[str, tuple[str, dict[int, int], dict[int, _Level]]] = {}
        if root is not None:
            for abstract in root.iterfind(_W + "abstractNum"):
                key = abstract.get(_W + "abstractNumId") or ""
                self._abstract[key] = self._levels(abstract)
                link = _val(abstract, "numStyleLink")
                if link:
                    self._links[key] = link
            for num in root.iterfind(_W + "num"):
                starts: dict[int, int] = {}
                levels: dict[int, _Level] = {}
                for override in num.iterfind(_W + "lvlOverride"):
                    ilvl = _int(override.get(_W + "ilvl"), 0)
                    if (start := _val(override, "startOverride")) is not None:
                        starts[ilvl] = _int(start, 1)
                    levels.update(self._levels(override))
                self._nums[num.get(_W + "numId") or ""] = (
                    _val(num, "abstractNumId") or "",
                    starts,
                    levels,
                )
        self._counters: dict[str, list[int | None]] = {}
        self._restarted: set[tuple[str, int]] = set()

    @staticmethod
    def _levels(parent: Any) -> dict[int, _Level]:
        levels = {}
        for lvl in parent.iterfind(_W + "lvl"):
            ilvl = _int(lvl.get(_W + "ilvl"), 0)
            if ilvl < _LEVELS:
                legal = lvl.find(_W + "isLgl")
                levels[ilvl] = _Level(
                    fmt=_val(lvl, "numFmt") or "decimal",
                    text=_val(lvl, "lvlText") or "",
                    start=_int(_val(lvl, "start"), 1),
                    legal=legal is not None and legal.get(_W + "val") not in ("0", "false"),
                    restart=_int(_val(lvl, "lvlRestart"), ilvl) - 1
                    if lvl.find(_W + "lvlRestart") is not None
                    else ilvl - 1,
                )
        return levels

    def _num_pr(self, p: Any) -> tuple[str, int] | None:
        """(numId, level) from the paragraph, else from its style chain; None: not a list item."""
        p_pr = p.find(_W + "pPr")
        num_pr = p_pr.find(_W + "numPr") if p_pr is not None else None
        style_id = _val(p_pr, "pStyle") if p_pr is not None else None
        seen: set[str] = set()
        while num_pr is None and style_id and style_id not in seen:
            seen.add(style_id)
            style = self._styles.get(style_id)
            if style is None:
                return None
            s_pr = style.element.find(_W + "pPr")
            num_pr = s_pr.find(_W + "numPr") if s_pr is not None else None
            style_id = _val(style.element, "basedOn")
        if num_pr is None:
            return None
        num_id = _val(num_pr, "numId")
        if not num_id or num_id == "0":  # numId 0 removes the style's numbering
            return None
        return num_id, min(_int(_val(num_pr, "ilvl"), 0), _LEVELS - 1)

    def _definition(self, num_id: str) -> tuple[str, dict[int, int], dict[int, _Level]] | None:
        """(abstract id, start overrides, levels) of `num_id`, following one numStyleLink."""
        found = self._nums.get(num_id)
        if found is None:
            return None
        abstract, starts, overrides = found
        link = self._links.get(abstract)
        if link and (style := self._styles.get(link)) is not None:
            s_pr = style.element.find(_W + "pPr")
            linked = _val(s_pr.find(_W + "numPr"), "numId") if s_pr is not None else None
            if linked and linked in self._nums:
                abstract = self._nums[linked][0]
        return abstract, starts, {**self._abstract.get(abstract, {}), **overrides}

    def marker(self, p: Any) -> str:
        """The number or bullet Word shows before the paragraph `p` (a `w:p` element): "3.",
        "b)", "•"; "" for none."""
        located = self._num_pr(p)
        definition = self._definition(located[0]) if located else None
        if located is None or definition is None:
            return ""
        num_id, ilvl = located
        abstract, starts, levels = definition
        level = levels.get(ilvl)
        if level is None:
            return ""
        counters = self._counters.setdefault(abstract, [None] * _LEVELS)
        if ilvl in starts and (num_id, ilvl) not in self._restarted:
            self._restarted.add((num_id, ilvl))
            counters[ilvl] = starts[ilvl]
        else:
            current = counters[ilvl]
            counters[ilvl] = level.start if current is None else current + 1
        for deeper in range(ilvl + 1, _LEVELS):
            below = levels.get(deeper)
            if below is None or below.restart >= ilvl:  # restarts after an item of this level
                counters[deeper] = None
        if level.fmt == "bullet":
            return BULLET
        text = level.text
        for k in range(_LEVELS - 1, -1, -1):  # %10 does not exist; go high to low anyway
            if f"%{k + 1}" in text:
                of = levels.get(k)
                value = counters[k]
                if value is None:
                    value = of.start if of is not None else 1
                fmt = "decimal" if level.legal or of is None else of.fmt
                text = text.replace(f"%{k + 1}", format_number(value, fmt))
        return text.strip()
