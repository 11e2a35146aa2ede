"""Check every answer sentence against the retrieved sources; keep only what they support.

Pure functions, no models: a sentence survives when one retrieved passage (the one it cites, or the
best match if it cites none) covers most of its content words and contains every number, amount,
date, identifier and proper name in it, and that passage is relevant to the question. Quotes are
exact substrings of the passage, with offsets into the document's extracted text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Literal

from ingest.abbreviations import ends_no_sentence
from ingest.list_markers import BULLETS
from ingest.section_titles import title_key
from ingest.table_rows import CELL_SEPARATOR
from rag_core.records import source_copy
from rag_core.store import Hit

_CITATION = re.compile(r"\s*\[(\d{1,3})\]")
# Runs of letters/digits joined by . , : / - _ ' (so 0.31, 09:30, 1,000, Standards-Version stay whole).
_TOKEN = re.compile(r"/?[^\W_](?:[\w]|[.,:/'’-](?=[^\W_]))*")
# A list item's marker at the start of a line: a bullet the loaders write or keep ("- ", "* ",
# "• ", and the dashes, circles and squares word processors set at deeper levels, "– ", "◦ ",
# "▪ ") or a number ("1. ").
_BULLET = rf"[{re.escape(BULLETS)}]"
_NUMBER = r"\d+[.)]"
_ITEM = rf"(?:{_BULLET}|{_NUMBER})"
_SENTENCE_END = re.compile(
    rf"(?<=[.!?])[\"'”’)\]*_]*\s+(?=[\"'“‘(\[*_]*[A-Z0-9])|\n\s*\n|\n(?=\s*{_ITEM}\s)"
)
_LIST_MARKER = re.compile(rf"{_ITEM}[ \t]+")
_NUMBERED = re.compile(_NUMBER)
# A bulleted item ("- DC employees: FAS-Transit Subsidy") says something without a full stop; a
# numbered line without one is as often a PDF's section heading ("4. Resources for members").
_BULLETED = re.compile(rf"[ \t]*{_BULLET}[ \t]+")
# A contents line's leaders: "Usertags . . . . . 86" (LaTeX), "Reauthentication ........ 10" (Word).
_DOT_LEADERS = re.compile(r"\.(?: \.){3}|\.{5}")
_CLOSERS = "\"'”’)]*_"
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    either else ever every few for from further had has have having he her here hers him his
    how however i if in into is it its itself just may me might more most must my no nor not
    now of off on once only or other our ours out over own per same shall she should so some
    such than that the their them then there these they this those through to too under
    until up upon us very was we were what when where which while who whom whose why will
    with within without would yes you your""".split()
)
# The prompt's own delimiters echoed back by the model are never a claim about the documents.
_ECHO = re.compile(r"<<<|>>>|\bSOURCE \d|^Source \[", re.IGNORECASE)
# Markup that makes a client fetch a URL when it renders the answer (a tracking or exfiltration
# channel a document could plant): markdown images, inline or by reference, and HTML images.
_IMAGE = re.compile(
    r"!\[[^\]\n]*\](?:\s?(?:\([^)\n]*\)|\[[^\]\n]*\]))?|<\s*img\b[^>]*>", re.IGNORECASE
)
_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s<>()\[\]\"'`]+|\bwww\.[^\s<>()\[\]\"'`]+", re.IGNORECASE
)
_CLITIC = re.compile(r"(.+?)['’](?:s|m|re|ve|ll|d)", re.IGNORECASE)
_SENTENCE_STARTERS = frozenset(
    """the a an this that these those it they we you if when in on for""".split()
)
_NOT_NAMES = STOPWORDS | _SENTENCE_STARTERS  # capitalised, yet no name
# A sentence that opens by pointing back ("It replaces the domestic meal allowance…", "These
# must be…", "Therefore, …") says what it says of the sentence before it: a quote of it alone
# leaves its reader asking what "it" is.
_POINTS_BACK = re.compile(
    r"[\"'“‘(]*(?:It|Its|They|Their|Them|This|These|That|Those|Such|He|She|His|Her|Both|Neither"
    r"|Each of these|The same|However|Otherwise|Therefore|Thus|Hence|Also|Instead|In addition"
    r"|In this case|In that case|In such cases|For this reason)\b"
)


def tokens(text: str) -> list[str]:
    """Lower-cased tokens; trailing joiners dropped; thousands separators removed from numbers."""
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group(0).lower().rstrip(".,:'’-/")
        if not token.isalpha() and any(ch.isdigit() for ch in token):  # isalpha: fast path
            token = re.sub(r"(?<=\d),(?=\d{3}\b)", "", token)
        if token:
            out.append(token)
    return out


@cache
def _stem(word: str) -> str:
    """A light suffix stripper: enough to match 'claims'/'claim', 'required'/'requires'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(t) for t in tokens(text) if t not in STOPWORDS and (len(t) > 2 or t.isdigit())}


def base_word(token: str) -> str:
    """A word without its possessive or contracted ending: a name's "Datica's" is "Datica", which
    the passage may state alone, and "I'm" is "I", no name a passage must hold."""
    match = _CLITIC.fullmatch(token)
    return match[1] if match else token


def critical_tokens(text: str) -> set[str]:
    """Tokens a supporting passage must contain verbatim: numbers, identifiers and proper names."""
    critical: set[str] = set()
    words = list(_TOKEN.finditer(text))
    for i, match in enumerate(words):
        raw = match.group(0).rstrip(".,:'’-/")
        low = raw.lower()
        if any(ch.isdigit() for ch in raw) or (any(ch in raw for ch in "/_.:") and len(raw) > 2):
            critical.add(tokens(raw)[0] if tokens(raw) else low)
        elif raw[:1].isupper() and (low := base_word(low)) not in _NOT_NAMES:
            at_start = i == 0 or text[: match.start()].rstrip().endswith((".", "!", "?", ":", "\n"))
            if not at_start or any(ch.isupper() for ch in raw[1:]) or "-" in raw:
                critical.add(low)
    return critical


def sentence_spans(text: str, whole: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace-trimmed and without a list item's marker at the
    start of a line (a quote is the item's words, not its bullet); abbreviations and decimals do
    not split. Each block in `whole` (start, end; a code block, a heading) is one span, whatever
    it holds."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()]
        if before.split() and ends_no_sentence(before.rsplit(None, 1)[-1]):
            continue
        if _NUMBERED.fullmatch(before.strip()):  # "1." opens a numbered item, it ends nothing
            continue
        # Closing quotes, brackets and emphasis after the full stop belong to the sentence.
        closing = len(match.group()) - len(match.group().lstrip(_CLOSERS))
        spans.append((start, match.start() + closing))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for lo, hi in (piece for span in spans for piece in _rows_apart(text, *span)):
        left, right = _trim(text, lo, hi)
        if left < right:
            marker = _LIST_MARKER.match(text, left, right)
            if marker and marker.end() < right and not _line_before(text, left).strip(" \t"):
                left = marker.end()
            trimmed.append((left, right))
    return _blocks_apart(text, trimmed, whole) if whole else trimmed


def _blocks_apart(
    text: str, spans: list[tuple[int, int]], whole: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The sentences with each block as one span of its own: a listing's "* change details"
    line is no list item, nor its "Note. Then" two sentences; nor is a numbered heading's number
    a sentence ("5.6.21." of "5.6.21. Files", which a quote joined as the sentence after its
    answer)."""
    blocks = [_trim(text, lo, hi) for lo, hi in whole]
    pieces = [block for block in blocks if block[0] < block[1]]
    for lo, hi in spans:
        for a, b in blocks:  # what of the sentence lies outside every block
            if a < hi and lo < b:
                if lo < a:
                    pieces.append(_trim(text, lo, a))
                lo = max(lo, b)
        if lo < hi:
            pieces.append(_trim(text, lo, hi))
    return sorted(span for span in pieces if span[0] < span[1])


def _trim(text: str, lo: int, hi: int) -> tuple[int, int]:
    """text[lo:hi] without the whitespace around it, as (start, end); empty: start == end."""
    segment = text[lo:hi]
    left = lo + len(segment) - len(segment.lstrip())
    return left, max(left, lo + len(segment.rstrip()))


def _rows_apart(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """A table row (a line of cells joined by " | ", as every reader writes one) is a sentence
    of its own: a header row never runs into the first row, nor a row into the next."""
    if CELL_SEPARATOR not in text[lo:hi]:
        return [(lo, hi)]
    pieces = []
    start = lo
    line_start = lo
    while (cut := text.find("\n", line_start, hi)) != -1:
        following = text.find("\n", cut + 1, hi)
        line, after = text[line_start:cut], text[cut + 1 : hi if following == -1 else following]
        if CELL_SEPARATOR in line or CELL_SEPARATOR in after:
            pieces.append((start, cut))
            start = cut + 1
        line_start = cut + 1
    pieces.append((start, hi))
    return pieces


def _line_before(text: str, position: int) -> str:
    """The text of `position`'s line before it: a list marker counts only at a line's start."""
    return text[text.rfind("\n", 0, position) + 1 : position]


def _ends_like_a_sentence(text: str, marks: tuple[str, ...] = (".", "!", "?", ";")) -> bool:
    """Ends with one of `marks`, closing quotes, brackets and emphasis aside."""
    return text.rstrip().rstrip(_CLOSERS).endswith(marks)


def without_images(text: str) -> str:
    """The text with image markup removed: an answer never makes its reader fetch anything."""
    if not _IMAGE.search(text):
        return text
    text = re.sub(r"[ \t]+\n|\n[ \t]+", "\n", _IMAGE.sub(" ", text))
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def foreign_urls(text: str, passage: str) -> list[str]:
    """URLs in `text` that `passage` does not contain verbatim (trailing punctuation aside)."""
    urls = (m.group(0).rstrip(".,;:!?") for m in _URL.finditer(text))
    return [url for url in urls if url not in passage]


def citation_numbers(sentence: str) -> list[int]:
    return [int(m.group(1)) for m in _CITATION.finditer(sentence)]


def strip_citations(sentence: str) -> str:
    return _CITATION.sub("", sentence).strip()


@dataclass(frozen=True)
class Quote:
    """An exact passage of a source: `text == document_text[start:end]`."""

    n: int
    hit: Hit
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Support:
    n: int
    coverage: float
    missing: frozenset[str]


# What an answer is: written by the model and verified, quoted from the sources, or the refusal.
AnswerStatus = Literal["answered", "extractive", "insufficient_evidence"]


@dataclass
class Verified:
    answer: str
    status: AnswerStatus
    citations: list[Quote] = field(default_factory=list)
    removed_sentences: int = 0
    score: float | None = None  # an extractive answer: its best sentence's score


@dataclass(frozen=True)
class Policy:
    """Thresholds for support; calibrated on the dev set, set from settings."""

    min_coverage: float = 0.6
    min_relevance: float = 0.3
    refusal: str = "The documents do not say."
    min_claim_words: int = 3  # shorter fragments (headings, "1.", echoed markers) are not claims
    max_sentences: int = 3  # small models repeat themselves; a long answer is not a better one
    max_quote_words: int = 60  # an extractive quote takes the next sentence too, up to this
    # An extractive answer quotes the runner-up sentence as well while the whole stays this short:
    # the best sentence held the answer for 40 of 60 dev-set questions, one of the best two for 45.
    max_answer_words: int = 70


def _claim_terms(text: str) -> set[str]:
    return content_words(text) | critical_tokens(text) | set(tokens(text))


def best_quote(n: int, hit: Hit, claim: str) -> Quote:
    """The sentence (or two neighbouring sentences) of the passage that best covers `claim`; a
    heading only where the passage holds nothing else (a refusal's closest passage read
    "Mandatory Training", the shortest span, where no sentence covered the question)."""
    text = hit.chunk.text
    wanted = content_words(claim) | critical_tokens(claim)
    spans = passage_spans(hit) or [(0, len(text))]
    heads = _headings_in(hit)
    windows = [span for span in spans if span not in heads] + [
        (a[0], b[1]) for a, b in pairwise(spans) if a not in heads and b not in heads
    ]
    windows = windows or spans

    def rank(window: tuple[int, int]) -> tuple[int, int]:
        lo, hi = window
        return len(wanted & _claim_terms(text[lo:hi])), -(hi - lo)  # most covered, then shortest

    lo, hi = max(windows, key=rank)
    k = [start for start, _ in spans].index(lo)  # every window begins where a sentence does
    lo = _antecedent(text, spans, [True] * len(spans), k, hi, Policy.max_quote_words)
    return Quote(n, hit, hit.chunk.start + lo, hit.chunk.start + hi, text[lo:hi])


def widened(quote: Quote, max_words: int = Policy.max_quote_words) -> Quote:
    """A refusal's closest passage shown by its closest sentence with the sentences around it, up
    to `max_words` (as long as a quote may grow): its reader looks for the answer near the
    sentence that came closest. Over the suite's 184 refused answerable questions the three
    passages shown quote the answer for 140 so, and for 120 by that sentence's quote alone
    (docs/evaluation.md). A heading bounds it: it never runs into the next section. So does a
    fragment without a letter, as in a quote: a PDF's page number or footnote label ("…for a
    list.\n\n15")."""
    hit = quote.hit
    text, base = hit.chunk.text, hit.chunk.start
    lo, hi = quote.start - base, quote.end - base
    spans = passage_spans(hit)
    # Headings are each one span of `spans`, as passage_spans makes them.
    bounds = _headings_in(hit) | {(a, b) for a, b in spans if _wordless(text[a:b])}
    after = [span for span in spans if span[0] >= hi]
    before = [span for span in reversed(spans) if span[1] <= lo]
    grew = True
    while grew:  # a sentence after, then one before, while they fit
        grew = False
        for side in (after, before):
            if not side or side[0] in bounds:
                continue
            new_lo, new_hi = min(lo, side[0][0]), max(hi, side[0][1])
            if len(text[new_lo:new_hi].split()) <= max_words:
                lo, hi = new_lo, new_hi
                side.pop(0)
                grew = True
    return Quote(quote.n, hit, base + lo, base + hi, text[lo:hi])


def support(claim: str, n: int, hit: Hit) -> Support:
    """How well one passage backs one claim: content-word coverage and missing critical tokens."""
    passage_tokens = set(tokens(hit.chunk.text))
    passage_words = content_words(hit.chunk.text)
    words = content_words(claim)
    coverage = len(words & passage_words) / len(words) if words else 0.0
    missing = frozenset(t for t in critical_tokens(claim) if t not in passage_tokens)
    return Support(n, coverage, missing)


def verify(
    answer: str, sources: Sequence[Hit], relevance: Sequence[float], policy: Policy
) -> Verified:
    """Keep the supported sentences of a generated answer, each with its citation and quote.

    `sources[i]` is the passage the prompt numbered i + 1; `relevance[i]` its relevance to the
    question. Citations to numbers outside the sources are dropped; an uncited sentence is checked
    against every relevant source. Nothing supported -> status insufficient_evidence (the caller
    falls back to an extractive answer).
    """
    sentences = [answer[lo:hi] for lo, hi in sentence_spans(answer)]
    kept: list[str] = []
    seen: set[frozenset[str]] = set()
    quotes: dict[int, Quote] = {}
    claims = 0
    for sentence in sentences:
        claim = without_images(strip_citations(sentence))
        words = content_words(claim)
        if not words and not critical_tokens(claim):
            continue  # punctuation or a bare marker: nothing was claimed
        claims += 1
        if len(words) < policy.min_claim_words or _ECHO.search(claim) or frozenset(words) in seen:
            continue
        cited = [n for n in citation_numbers(sentence) if 1 <= n <= len(sources)]
        candidates = cited or list(range(1, len(sources) + 1))
        checks = [
            support(claim, n, sources[n - 1])
            for n in candidates
            if relevance[n - 1] >= policy.min_relevance
        ]
        good = [
            s
            for s in checks
            if s.coverage >= policy.min_coverage
            and not s.missing
            and not foreign_urls(claim, sources[s.n - 1].chunk.text)
        ]
        if not good or len(kept) >= policy.max_sentences:
            continue
        best = max(good, key=lambda s: s.coverage)
        seen.add(frozenset(words))
        kept.append(_cite(claim, best.n))
        if best.n not in quotes:  # quote only the passage that won, once
            quotes[best.n] = best_quote(best.n, sources[best.n - 1], claim)
    removed = claims - len(kept)
    if not kept:
        return Verified(policy.refusal, "insufficient_evidence", [], removed)
    ordered = sorted(quotes.values(), key=lambda q: q.n)
    return Verified(" ".join(kept), "answered", ordered, removed)


def extractive(
    question: str,
    sources: Sequence[Hit],
    relevance: Sequence[float],
    policy: Policy,
    score: Callable[[str, list[str]], list[float]] | None = None,
    min_score: float | None = None,
    spans: Sequence[list[tuple[int, int, int, int]]] | None = None,
) -> Verified:
    """Quote the source sentence that best answers the question, verbatim, from a relevant passage,
    and the runner-up too when both pass `min_score` and stay short together.

    `score(question, sentences)` ranks candidate sentences (the service passes an embedding
    similarity); by default, the share of the question's content words each sentence contains.
    Below `min_score`, the best sentence does not answer the question: refuse instead.
    `spans` is each source's `quotable` spans, where the caller needs them too.
    """
    # (source, start, end, quote start, quote end) in the chunk's text
    candidates = [
        (i, *found)
        for i, hit in enumerate(sources)
        if relevance[i] >= policy.min_relevance
        for found in (quotable(hit, policy) if spans is None else spans[i])
    ]
    texts = [sources[i].chunk.text[lo:hi] for i, lo, hi, _, _ in candidates]
    if not texts:
        return Verified(policy.refusal, "insufficient_evidence")
    scores = (score or overlap_scores)(question, texts)
    ranked = sorted(
        range(len(texts)), key=lambda k: (scores[k], relevance[candidates[k][0]]), reverse=True
    )
    best = ranked[0]
    if min_score is not None and scores[best] < min_score:
        return Verified(policy.refusal, "insufficient_evidence", score=scores[best])
    quotes = [_quote(sources, candidates[best], 1)]
    words = len(quotes[0].text.split())
    for k in ranked[1:]:
        if min_score is not None and scores[k] < min_score:
            break
        quote = _quote(sources, candidates[k], 2)
        if not any(_overlap(quote, q) for q in quotes):
            if words + len(quote.text.split()) <= policy.max_answer_words:
                quotes.append(quote)
            break  # only the runner-up is worth adding; a third is more often noise
    # The citation's quote stays verbatim; the answer drops image markup the passage carried.
    answer = " ".join(f"{without_images(q.text)} [{q.n}]" for q in quotes)
    return Verified(answer, "extractive", quotes, 0, score=scores[best])


def quotable(hit: Hit, policy: Policy) -> list[tuple[int, int, int, int]]:
    """Each candidate sentence of the passage with the extent of its quote, as (start, end,
    quote start, quote end) in the chunk's text: what an answer quotes, and what the refusal's
    closest passages show."""
    text = hit.chunk.text
    heads = _headings_in(hit)
    code = set(_code_in(hit))
    # A heading, even one that asks ("Who decides?"), answers nothing; nor does a table row,
    # which the answer model never learnt to read (rows as candidates cost 4 points of accuracy
    # held out, docs/evaluation.md), nor a code block, which it never read.
    spans = passage_spans(hit)
    kept = [
        span not in heads and span not in code and CELL_SEPARATOR not in text[span[0] : span[1]]
        for span in spans
    ]
    found = []
    for k, (lo, hi) in enumerate(spans):
        if not kept[k]:
            continue
        bullet = _BULLETED.fullmatch(_line_before(text, lo)) is not None
        if not _is_statement(without_images(text[lo:hi]), policy, bullet):
            continue
        # The sentence most like the question often announces the answer ("... set to this
        # value:") and the next one gives it: quote both when they are short.
        begin, end = lo, hi
        # What follows a colon is what it announces, a list item or a code block too ("…via
        # the options below: • The Work Number website"); otherwise only a full sentence, never
        # a heading ("## Swarm Control"), is joined.
        announces = _ends_like_a_sentence(text[lo:hi], (":",))
        if (
            k + 1 < len(spans)
            and (kept[k + 1] or (announces and spans[k + 1] in code))
            and not bullet  # an item stands alone
        ):
            nxt = text[spans[k + 1][0] : spans[k + 1][1]]
            joined = len(text[lo : spans[k + 1][1]].split())
            says = spans[k + 1] in code or not _wordless(nxt)
            if (announces or _ends_like_a_sentence(nxt)) and (
                says and joined <= policy.max_quote_words
            ):
                end = spans[k + 1][1]
        if not bullet:
            begin = _antecedent(text, spans, kept, k, end, policy.max_quote_words)
        found.append((lo, hi, begin, end))
    return found


def _antecedent(
    text: str,
    spans: Sequence[tuple[int, int]],
    kept: Sequence[bool],
    k: int,
    end: int,
    max_words: int,
) -> int:
    """Where the quote of sentence k, which opens by pointing back ("It", "These"), begins: at
    the sentence before it, and so on while that one points back too ("The per diem is €68. It
    covers meals. It replaces…"), as long as each is a statement of the same paragraph and the
    quote stays short. Where the chain cannot reach the sentence that names the subject, the
    quote still begins as far back as it can: what it adds is context the reader needs."""
    while k > 0 and _POINTS_BACK.match(text, spans[k][0]):
        before_lo, before_hi = spans[k - 1]
        if (
            not kept[k - 1]
            or "\n\n" in text[before_hi : spans[k][0]]
            or _BULLETED.fullmatch(_line_before(text, before_lo)) is not None
            or not _ends_like_a_sentence(text[before_lo:before_hi], (".", "!", "?", ":", ";"))
            or len(text[before_lo:end].split()) > max_words
        ):
            break
        k -= 1
    return spans[k][0]


def _wordless(fragment: str) -> bool:
    """A fragment without a letter says nothing: a contents line's "• 1.", a PDF's page number,
    a footnote's label. A quote never joins one, and a refusal's closest passage stops at one."""
    return not any(ch.isalpha() for ch in fragment)


def _headings_in(hit: Hit) -> set[tuple[int, int]]:
    """The (start, end) in the chunk's text of each heading that stands in it (the loaders
    record where each begins). A PDF records its outline's title at the line that shows it,
    after its number and in the page's case ("4.1 Mailing lists", "RESOURCES FOR DEBIAN
    MEMBERS"): that line is the heading. Read by its title alone, 278 of the 285 headings in the
    Developer's Reference's retrieved passages were sentences, and "5.14.4.2 How could
    installing a package into testing possibly break other packages?" a candidate answer."""
    chunk = hit.chunk
    text = chunk.text
    found = set()
    for at, heading in chunk.headings:
        lo = at - chunk.start
        if text.startswith(heading, lo):
            found.add((lo, lo + len(heading)))
        elif 0 <= lo < len(text):
            end = text.find("\n", lo)
            end = len(text) if end < 0 else end
            if title_key(text[lo:end]) == title_key(heading):
                found.add(_trim(text, lo, end))
    return found


def _code_in(hit: Hit) -> list[tuple[int, int]]:
    """The (start, end) in the chunk's text of each code block, or its part, in the chunk,
    whitespace-trimmed as every sentence span is."""
    chunk = hit.chunk
    return [_trim(chunk.text, lo - chunk.start, hi - chunk.start) for lo, hi in chunk.code]


def passage_spans(hit: Hit) -> list[tuple[int, int]]:
    """The passage's sentences, each code block and each heading one of them: what is scored
    and quoted."""
    return sentence_spans(hit.chunk.text, sorted([*_code_in(hit), *_headings_in(hit)]))


def _quote(sources: Sequence[Hit], candidate: tuple[int, int, int, int, int], n: int) -> Quote:
    """Quotes are numbered in the order the answer gives them, so two quotes of one passage
    are still [1] and [2]. A quote of a Sphinx page's source copy cites instead the first
    retrieved passage outside `_sources` that holds the same words, the page's where it was
    retrieved: the page is what a reader checks, and retrieval gives the page its copy's place
    only where the two passages are cut alike."""
    i, _, _, begin, end = candidate
    hit = sources[i]
    text = hit.chunk.text[begin:end]
    if source_copy(hit.chunk.source):
        for page in sources:
            if not source_copy(page.chunk.source) and (at := page.chunk.text.find(text)) >= 0:
                hit, begin = page, at
                break
    start = hit.chunk.start + begin
    return Quote(n, hit, start, start + len(text), text)


def _overlap(a: Quote, b: Quote) -> bool:
    """The same words of the same document (overlapping chunks repeat sentences), or the same
    words anywhere: one text ingested twice, as a page and as its source, wrapped or quoted
    differently ("…changed the file,\nit is left alone.", "“Half-Configured”" and
    "\"Half-Configured\""), is one quote."""
    same = a.hit.chunk.document_id == b.hit.chunk.document_id
    return (same and a.start < b.end and b.start < a.end) or repeats(a.text, b.text)


def repeats(a: str, b: str) -> bool:
    """One text's words, in order, within the other's, whatever the spacing, line breaks and
    punctuation: the same sentence, or a quote of a copy of the text that runs on past it ("…must
    not use --local. [1] …must not use --local. All packages which… [2]")."""
    if a == b:
        return True
    shorter, longer = sorted((tokens(a), tokens(b)), key=len)
    return bool(shorter) and f" {' '.join(shorter)} " in f" {' '.join(longer)} "


def _is_statement(sentence: str, policy: Policy, bullet: bool = False) -> bool:
    """A full sentence worth quoting: ends like one, or is a bulleted item, and says something
    (not a heading, nor a table of contents' line with its dot leaders)."""
    return (
        (bullet or _ends_like_a_sentence(sentence, (".", "!", "?", ":", ";")))
        and len(content_words(sentence)) >= policy.min_claim_words
        and not _DOT_LEADERS.search(sentence)
    )


def _cite(sentence: str, n: int) -> str:
    """Put the marker inside the sentence: 'It is €42 [1].'"""
    body = sentence.rstrip()
    end = len(body.rstrip(".!?"))
    return f"{body[:end]} [{n}]{body[end:]}"


def overlap_scores(
    question: str, sentences: list[str], weight: Callable[[str], float] | None = None
) -> list[float]:
    """Share of the question's content words each sentence contains, each word counted by
    `weight` (e.g. its IDF in the collection), or equally."""
    wanted = content_words(question)
    weigh = weight or (lambda _: 1.0)
    total = sum(weigh(w) for w in wanted)
    if total <= 0:
        return [0.0] * len(sentences)
    return [sum(weigh(w) for w in wanted & content_words(s)) / total for s in sentences]
