"""The verifier on its own: planted false sentences go, supported ones stay with exact quotes."""

from __future__ import annotations

import pytest

from rag_core.store import Chunk, Hit
from rag_server.grounding import (
    Policy,
    Quote,
    best_quote,
    critical_tokens,
    extractive,
    passage_spans,
    repeats,
    sentence_spans,
    tokens,
    verify,
    widened,
)

DOC = (
    "Meals and Accommodation\n\n"
    "The domestic meal allowance is €42 per day. Hotel stays are capped at €165 per night, "
    "including breakfast. Itemised receipts are required for any expense above €25.\n\n"
    "Claims and Approval\n\n"
    "Claims must be submitted within 30 days through the Ledgerly expense system. Any single "
    "claim above €500 needs approval from the cost-centre manager. Mileage is reimbursed at "
    "€0.31 per kilometre."
)
POLICY = Policy(min_coverage=0.6, min_relevance=0.3)


def _hit(start: int, end: int, score: float = 0.8, doc: str = "expenses.pdf") -> Hit:
    chunk = Chunk(
        chunk_id=f"{doc}-{start}", document_id=doc, source=doc, title="Expenses", text=DOC[start:end],
        start=start, end=end, chunk_index=0, chunk_count=2, content_hash="h", pipeline="p",
        ingested_at="t", page=1,
    )  # fmt: skip
    return Hit(chunk, score)


def _whole(text: str, doc: str, title: str, start: int = 0) -> Hit:
    """A one-chunk document holding `text`, retrieved with relevance 0.8."""
    chunk = Chunk(
        chunk_id="c", document_id=doc, source=doc, title=title, text=text,
        start=start, end=start + len(text), chunk_index=0, chunk_count=1, content_hash="h",
        pipeline="p", ingested_at="t",
    )  # fmt: skip
    return Hit(chunk, 0.8)


def _with_heading(text: str, start: int, heading: str) -> Hit:
    """A one-chunk document at `start` whose loader recorded `heading` where it stands."""
    at = start + text.index(heading)
    chunk = Chunk(
        chunk_id="c", document_id="h.md", source="h.md", title="H", text=text,
        start=start, end=start + len(text), chunk_index=0, chunk_count=1, content_hash="h",
        pipeline="p", ingested_at="t", headings=((at, heading),),
    )  # fmt: skip
    return Hit(chunk, 0.8)


def _loaded(html: str) -> Hit:
    """A one-chunk page read by the real HTML reader, its code blocks recorded as ingestion
    records them."""
    from pathlib import Path

    from ingest.loaders import load_html

    doc = load_html(Path("page.html"), html.encode())
    chunk = Chunk(
        chunk_id="c", document_id="page.html", source="page.html", title=doc.title,
        text=doc.text, start=0, end=len(doc.text), chunk_index=0, chunk_count=1,
        content_hash="h", pipeline="p", ingested_at="t", code=tuple(doc.code),
        headings=tuple(doc.headings),
    )  # fmt: skip
    return Hit(chunk, 0.8)


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


SPLIT = DOC.index("Claims and Approval")
SOURCES = [_hit(0, SPLIT), _hit(SPLIT, len(DOC))]
RELEVANCE = [0.7, 0.6]


def test_sentences_split_on_ends_not_on_decimals_or_abbreviations() -> None:
    text = (
        "Mileage is €0.31 per km, e.g. for visits. Claims go to Ledgerly Ltd. within 30 days! Done?"
    )
    got = _sentences(text)
    assert got == [
        "Mileage is €0.31 per km, e.g. for visits.",
        "Claims go to Ledgerly Ltd. within 30 days!",
        "Done?",
    ]


def test_initialisms_end_no_sentence() -> None:
    """A full stop in "U.S." or "a.m." before a capital ended a sentence there: "…follow the
    U.S." was a quote of its own."""
    text = (
        "Claims follow the U.S. Department of Labor rules. Offices open at 9 a.m. Monday to Friday."
    )
    assert _sentences(text) == [
        "Claims follow the U.S. Department of Labor rules.",
        "Offices open at 9 a.m. Monday to Friday.",
    ]


def test_numbers_identifiers_and_names_are_critical() -> None:
    critical = critical_tokens("Submit within 30 days through Ledgerly to /usr/share/doc at 09:30.")
    assert {"30", "ledgerly", "/usr/share/doc", "09:30"} <= critical
    assert "submit" not in critical
    assert tokens("It costs €1,000 or 0.31.") == ["it", "costs", "1000", "or", "0.31"]


def test_a_possessive_is_its_name_and_i_am_no_name() -> None:
    """ "I'm" was a name a passage had to hold, so "Which list should I ask when I'm in doubt…?"
    found none of its names in any passage; "Datica's" was one that "Datica" did not hold."""
    assert critical_tokens("Which list should I ask when I'm in doubt?") == set()
    assert critical_tokens("Do Datica's and GSA’s teams review code?") == {"datica", "gsa"}
    assert critical_tokens("Where is O'Brien's office?") == {"o'brien"}
    result = verify(
        "Datica's red team reviews code [1].",
        [_whole("The red team of Datica reviews every change to code.", "d.md", "Datica")],
        [0.8],
        POLICY,
    )
    assert result.status == "answered"


def test_a_supported_sentence_survives_with_an_exact_quote() -> None:
    result = verify("The meal allowance is €42 per day [1].", SOURCES, RELEVANCE, POLICY)
    assert result.status == "answered" and result.removed_sentences == 0
    assert result.answer == "The meal allowance is €42 per day [1]."
    (quote,) = result.citations
    assert DOC[quote.start : quote.end] == quote.text
    assert "€42" in quote.text


@pytest.mark.parametrize(
    "planted",
    [
        "The meal allowance is €55 per day [1].",  # wrong number
        "Claims must be submitted within 45 days through Ledgerly [2].",  # wrong number
        "Claims must be submitted through the Expensify system [2].",  # invented name
        "The CEO's salary is €250,000 per year [1].",  # not in the sources at all
        "Employees receive a company car after 2 years [2].",  # unsupported topic
        "Hotel stays are capped at €165 per night in Paris [1].",  # an added proper name
    ],
)
def test_planted_false_sentences_are_removed(planted: str) -> None:
    true = "Hotel stays are capped at €165 per night [1]."
    result = verify(f"{true} {planted}", SOURCES, RELEVANCE, POLICY)
    assert result.answer == true
    assert result.removed_sentences == 1


def test_citations_to_missing_sources_are_dropped_and_support_is_found() -> None:
    result = verify("Mileage is reimbursed at €0.31 per kilometre [7].", SOURCES, RELEVANCE, POLICY)
    assert result.answer == "Mileage is reimbursed at €0.31 per kilometre [2]."
    assert [q.n for q in result.citations] == [2]


def test_a_sentence_citing_the_wrong_source_is_removed() -> None:
    result = verify("Mileage is reimbursed at €0.31 per kilometre [1].", SOURCES, RELEVANCE, POLICY)
    assert result.status == "insufficient_evidence" and result.removed_sentences == 1


def test_a_passage_irrelevant_to_the_question_supports_nothing() -> None:
    result = verify("The meal allowance is €42 per day.", SOURCES, [0.1, 0.1], POLICY)
    assert result.status == "insufficient_evidence"


def test_extractive_fallback_quotes_the_best_sentence_verbatim() -> None:
    question = "How much is mileage reimbursed per kilometre?"
    result = extractive(question, SOURCES, RELEVANCE, POLICY, min_score=0.5)
    assert result.status == "extractive"
    (quote,) = result.citations
    assert quote.text == "Mileage is reimbursed at €0.31 per kilometre."
    assert DOC[quote.start : quote.end] == quote.text
    assert result.answer == "Mileage is reimbursed at €0.31 per kilometre. [1]"


def _scripted(question: str, sentences: list[str]) -> list[float]:
    """A ranker with fixed opinions: mileage first, the meal allowance second, the rest low."""
    return [1.0 if "Mileage" in s else 0.9 if "meal" in s else 0.2 for s in sentences]


def test_an_extractive_answer_adds_the_runner_up_with_its_own_citation() -> None:
    result = extractive("Travel rates?", SOURCES, RELEVANCE, POLICY, _scripted, min_score=0.5)
    assert [q.hit for q in result.citations] == [SOURCES[1], SOURCES[0]]
    assert [q.n for q in result.citations] == [1, 2]  # numbered as the answer gives them
    best, runner_up = result.citations
    assert best.text == "Mileage is reimbursed at €0.31 per kilometre."
    assert runner_up.text.startswith("The domestic meal allowance is €42 per day.")
    assert all(DOC[q.start : q.end] == q.text for q in result.citations)
    assert result.answer == f"{best.text} [1] {runner_up.text} [2]"
    assert result.score == 1.0


def test_the_runner_up_must_pass_the_threshold_and_fit_the_length() -> None:
    below = extractive("Travel rates?", SOURCES, RELEVANCE, POLICY, _scripted, min_score=0.95)
    assert [q.hit for q in below.citations] == [SOURCES[1]]
    short = Policy(min_coverage=0.6, min_relevance=0.3, max_answer_words=15)
    too_long = extractive("Travel rates?", SOURCES, RELEVANCE, short, _scripted, min_score=0.5)
    assert [q.hit for q in too_long.citations] == [SOURCES[1]]


def test_the_runner_up_is_never_the_same_sentence_from_an_overlapping_chunk() -> None:
    overlapping = [*SOURCES, _hit(DOC.index("Mileage"), len(DOC), score=0.75)]
    result = extractive(
        "Travel rates?", overlapping, [*RELEVANCE, 0.75], POLICY, _scripted, min_score=0.5
    )
    assert result.answer.count("Mileage") == 1
    assert "meal allowance" in result.answer


def test_extractive_refuses_when_no_source_is_relevant() -> None:
    result = extractive("What is the CEO's salary?", SOURCES, [0.05, 0.05], POLICY)
    assert result.status == "insufficient_evidence" and result.citations == []


def test_extractive_refuses_when_the_best_sentence_scores_below_the_threshold() -> None:
    question = "How much is mileage reimbursed per kilometre?"
    assert extractive(question, SOURCES, RELEVANCE, POLICY, min_score=0.5).status == "extractive"
    result = extractive(question, SOURCES, RELEVANCE, POLICY, min_score=1.01)
    assert result.status == "insufficient_evidence"


def test_extractive_quotes_the_next_sentence_that_gives_the_announced_answer() -> None:
    text = (
        "Accounts\n\nSystem users who should not have a home directory should have their home "
        "directory set to this value. It is /nonexistent. Other users need one."
    )
    hit = _whole(text, "users.md", "Users", 100)
    question = "Which home directory should a system user without a home directory have?"
    result = extractive(question, [hit], [0.8], POLICY, min_score=0.5)
    (quote,) = result.citations
    assert quote.text.endswith("It is /nonexistent.")
    assert text[quote.start - 100 : quote.end - 100] == quote.text
    assert "Other users" not in result.answer


def test_weighted_overlap_counts_rare_question_words_more() -> None:
    from rag_server.grounding import overlap_scores

    question = "Which policy governs Tunnelgate access?"
    sentences = ["This policy covers access.", "Tunnelgate is the VPN."]
    assert overlap_scores(question, sentences) == [0.5, 0.25]  # policy+access vs tunnelgate
    rare = {"tunnelgate": 4.0}
    weighted = overlap_scores(question, sentences, lambda w: rare.get(w, 0.5))
    assert weighted[1] > weighted[0]


def test_two_quotes_of_one_passage_are_numbered_one_and_two() -> None:
    one = [_hit(0, len(DOC))]
    ranks = lambda _q, ss: [1.0 if "Mileage" in s else 0.9 if "Hotel" in s else 0.1 for s in ss]  # noqa: E731
    result = extractive("Rates?", one, [0.8], POLICY, ranks, min_score=0.5)
    assert [q.n for q in result.citations] == [1, 2]
    assert result.answer.endswith("[2]") and "[1]" in result.answer


def test_a_quote_never_carries_the_next_heading_along() -> None:
    text = "The survey was led by Penrose.\n\n## Swarm Control\n\nSwarms are split in May."
    hit = _whole(text, "bees.md", "Bees")
    ranks = lambda _q, ss: [1.0 if "Penrose" in s else 0.0 for s in ss]  # noqa: E731
    result = extractive("Who led the survey?", [hit], [0.8], POLICY, ranks, 0.5)
    assert result.citations[0].text == "The survey was led by Penrose."
    assert "Swarm Control" not in result.answer


def test_a_sentence_that_announces_is_quoted_with_what_it_announces() -> None:
    """A mortgage lender's question was answered with "…they can contact TWN via the options
    below:", which stopped before the option: a list item has no full stop, so it was never
    joined. What follows a colon is joined, an item or a command; a heading never is."""
    text = (
        "Lenders can verify your income via the options below:\n"
        "• The Work Number website\n• A letter from HR\n\n"
        "Run the tool as follows:\n\nOptions\n\nThe tool takes no options."
    )
    start = 300
    hit = _with_heading(text, start, "Options")

    def quote(word: str) -> str:
        likes = lambda _q, ss: [1.0 if word in s else 0.1 for s in ss]  # noqa: E731
        (cited,) = extractive("How?", [hit], [0.8], POLICY, likes, 0.5).citations
        assert text[cited.start - start : cited.end - start] == cited.text
        return cited.text

    assert quote("options below") == (
        "Lenders can verify your income via the options below:\n• The Work Number website"
    )
    assert quote("as follows") == "Run the tool as follows:"  # no heading carried along


def test_a_word_processors_deeper_bullets_are_items_too() -> None:
    """A PDF written by Word or LibreOffice sets second-level items with an en dash, third-level
    ones with a square or circle: each is a sentence of its own, quoted without its marker.
    Read as one sentence, the answer to "what is the minimum password length?" was the whole
    list, and "the maximum password length" was answered from it (the HIPAA policies as PDF)."""
    text = (
        "Password configurations are set to require:\n"
        "– a minimum length of 8 characters;\n"
        "– a mix of upper case characters, lower case characters, and numbers;\n"
        "◦ a 90-day password expiration;\n"
        "▪ a 15-minute lockout after 5 failed attempts."
    )
    assert _sentences(text) == [
        "Password configurations are set to require:",
        "a minimum length of 8 characters;",
        "a mix of upper case characters, lower case characters, and numbers;",
        "a 90-day password expiration;",
        "a 15-minute lockout after 5 failed attempts.",
    ]
    assert _sentences("Costs fell – as planned – in May.") == ["Costs fell – as planned – in May."]


def test_a_bulleted_item_is_quoted_without_its_bullet_and_a_numbered_heading_is_not() -> None:
    """Policies give their facts in lists: a bulleted item needs no full stop to be quoted, and
    the quote is its words, not its marker. A numbered line without one is as often a PDF's
    section heading, so only a full stop makes it quotable; a contents line never is."""
    text = (
        "4. Earning annual leave\n\n"
        "Annual leave accrues each pay period as follows:\n"
        "* Less than 3 years of service: 4 hours per pay period\n"
        "* Between 3 and 15 years of service: 6 hours per pay period\n"
        "1. Ask your supervisor before you book travel.\n\n"
        "7.1.1 Reporting lots of bugs at once (mass bug filing) . . . . . . . . 86.\n\n"
        "4.3.3 Reauthentication of the subscriber ............................. 10."
    )
    got = _sentences(text)
    assert got[2:4] == [
        "Less than 3 years of service: 4 hours per pay period",
        "Between 3 and 15 years of service: 6 hours per pay period",
    ]
    hit = _whole(text, "leave.md", "Leave")
    seen: list[str] = []

    def ranks(_q: str, sentences: list[str]) -> list[float]:
        seen.extend(sentences)
        return [1.0 if "Between 3" in s else 0.0 for s in sentences]

    question = "How much leave do I earn after 5 years?"
    result = extractive(question, [hit], [0.8], POLICY, ranks, 0.5)
    assert result.citations[0].text == got[3]
    assert text[result.citations[0].start : result.citations[0].end] == got[3]  # verbatim
    assert got[0] == "Earning annual leave" and got[0] not in seen  # a heading, not a claim
    numbered = "Ask your supervisor before you book travel."
    assert numbered in got and numbered in seen  # a numbered item with a full stop
    assert not any("mass bug filing" in s for s in seen)  # a table of contents' line
    assert not any("Reauthentication" in s for s in seen)  # a word processor's contents line


def test_a_sentence_in_bold_or_quotes_is_its_own_sentence_with_its_closing_marks() -> None:
    """Markdown emphasis at a sentence's start used to glue it to the one before, so the fact
    hid inside a long run; the marks that close a sentence stay with it, and it stays quotable."""
    text = (
        "These steps apply to every office.\n"
        "**Begin this process at least two weeks before your last day of work.**\n"
        'The form says "submit early." Then it ends.'
    )
    got = _sentences(text)
    assert got == [
        "These steps apply to every office.",
        "**Begin this process at least two weeks before your last day of work.**",
        'The form says "submit early."',
        "Then it ends.",
    ]
    hit = _whole(text, "off.md", "Offboarding")
    ranks = lambda _q, ss: [1.0 if "two weeks" in s else 0.0 for s in ss]  # noqa: E731
    result = extractive("When do I start?", [hit], [0.8], POLICY, ranks, 0.5)
    assert result.citations[0].text.startswith(got[1])


def test_a_heading_that_asks_is_never_a_quote_nor_carried_along() -> None:
    """A rendered Markdown or HTML heading is a line like any other, and one may ask a question:
    "Who is involved in the reasonable accommodation process?" was quoted for "Who decides on
    my accommodation request?". The loaders record where each heading begins."""
    text = (
        "Requests are logged by the HR team.\n\nWho is involved in the process?\n\n"
        "Your supervisor and the Reasonable Accommodation Coordinator decide together."
    )
    hit = _with_heading(text, 500, "Who is involved in the process?")
    asks = lambda _q, ss: [1.0 if "involved" in s else 0.6 if "logged" in s else 0.1 for s in ss]  # noqa: E731
    result = extractive("Who is involved?", [hit], [0.8], POLICY, asks, 0.5)
    assert result.citations[0].text == "Requests are logged by the HR team."  # no heading after
    assert "Who is involved" not in result.answer


def test_a_table_row_is_a_sentence_of_its_own() -> None:
    """Rows are lines of cells joined by " | " (every reader writes them so): a header row never
    runs into the first row, nor a row into the prose after the table."""
    text = "Location | Address\nChicago | 230 S Dearborn St.\nDenver | Building 41.\nCall first."
    assert _sentences(text) == [
        "Location | Address",
        "Chicago | 230 S Dearborn St.",
        "Denver | Building 41.",
        "Call first.",
    ]


def test_a_sentence_that_points_back_is_quoted_with_the_sentence_before_it() -> None:
    """The bundled examples answered "What is the meal allowance abroad?" with "It replaces the
    domestic meal allowance…", and left out the amount two sentences before it give."""
    filler = "Long words follow here, " * 14  # 56 words: no room for a sentence more
    text = (
        "Travel Abroad\n\n"
        "The international per diem is €68. It covers meals, transport and tips. "
        "It replaces the domestic meal allowance abroad.\n\n"
        "Hotels\n\n"
        "Hotels abroad are booked by the agency.\n\n"
        f"They are paid by the company in advance. {filler}and end now. "
        "These rates change every single year."
    )
    hit = _whole(text, "travel.pdf", "Travel", 40)
    likes = lambda word: lambda _q, ss: [1.0 if s.startswith(word) else 0.1 for s in ss]  # noqa: E731

    def quote(word: str) -> str:
        result = extractive("Abroad?", [hit], [0.8], POLICY, likes(word), 0.5)
        (cited,) = result.citations
        assert text[cited.start - 40 : cited.end - 40] == cited.text  # verbatim, offsets too
        return cited.text

    # back through "It covers…", which points back too, to the sentence that names the subject
    assert quote("It replaces") == (
        "The international per diem is €68. It covers meals, transport and tips. "
        "It replaces the domestic meal allowance abroad."
    )
    # The sentence before ends its paragraph: it is another subject ("They" are the hotels, but
    # a blank line says the writer moved on, and a quote never crosses one).
    assert quote("They are") == "They are paid by the company in advance."
    # The sentence before would make the quote longer than `max_quote_words`: it stands alone.
    assert quote("These rates") == "These rates change every single year."
    # A connective points back as a pronoun does.
    so = _whole(
        "Receipts are kept for ten years. Therefore, scan every paper receipt.", "r.md", "R"
    )
    (cited,) = extractive("Scan?", [so], [0.8], POLICY, likes("Therefore"), 0.5).citations
    assert cited.text.startswith("Receipts are kept")
    # A written answer's quote, and a refusal's closest passage, go back the same way.
    written = best_quote(1, hit, "The per diem replaces the domestic meal allowance abroad.")
    assert written.text.startswith("The international per diem is €68. It covers")


CHANGELOG_PAGE = (
    "<main><p>Each entry of the changelog is written like this:</p>"
    "<pre>package (1.0-1) unstable; urgency=medium\n\n"
    "  * change details\n    more change details. Closes: #123\n"
    "  * even more change details\n</pre>"
    "<p>You can leave the interpreter by typing the following command:</p><pre>quit()</pre>"
    "<p>The trailer line ends the entry. It names the maintainer.</p></main>"
)


def test_a_code_block_is_one_span_with_its_lines() -> None:
    """Read as prose, a listing's lines ran together and its "* change details" line was a
    bulleted item; it is one span now, line breaks and all."""
    hit = _loaded(CHANGELOG_PAGE)
    text = hit.chunk.text
    got = [text[a:b] for a, b in passage_spans(hit)]
    assert got == [
        "Each entry of the changelog is written like this:",
        "package (1.0-1) unstable; urgency=medium\n\n  * change details\n"
        "    more change details. Closes: #123\n  * even more change details",
        "You can leave the interpreter by typing the following command:",
        "quit()",
        "The trailer line ends the entry.",
        "It names the maintainer.",
    ]
    assert "change details" in " ".join(_sentences(text))  # as prose, the items are sentences
    assert "  * change details" not in _sentences(text)[1]


def test_a_code_block_is_never_a_quote_of_its_own_but_follows_its_colon() -> None:
    """A listing says nothing the answer model can read: "What is the maximum line length for
    change details?" was answered from a changelog example's "* change details" line (Debian
    Policy). What a colon announces is quoted with it, a short listing too."""
    hit = _loaded(CHANGELOG_PAGE)
    details = lambda _q, ss: [0.9 if "change details" in s else 0.1 for s in ss]  # noqa: E731
    refused = extractive(
        "Maximum line length of change details?", [hit], [0.8], POLICY, details, 0.5
    )
    assert refused.status == "insufficient_evidence"
    leave = lambda _q, ss: [0.9 if "leave the interpreter" in s else 0.1 for s in ss]  # noqa: E731
    (cited,) = extractive("How do I exit?", [hit], [0.8], POLICY, leave, 0.5).citations
    assert cited.text == "You can leave the interpreter by typing the following command:\n\nquit()"
    assert hit.chunk.text[cited.start : cited.end] == cited.text


def test_a_numbered_heading_is_one_span_and_never_joins_a_quote() -> None:
    """Sphinx numbers its headings ("5.6.21. Files"): split at the number's full stop, the
    heading gave a "sentence" "5.6.21.", which the answer above it took as its next sentence
    ("…rounded up.\n\n5.6.21. [1]")."""
    hit = _loaded(
        "<h3>5.6.20. Installed-Size</h3><p>The disk space is given as the integer value of the"
        " estimated installed size in bytes, divided by 1024 and rounded up.</p>"
        "<h3>5.6.21. Files</h3><p>This field contains a list of files.</p>"
    )
    text = hit.chunk.text
    assert [text[a:b] for a, b in passage_spans(hit)] == [
        "5.6.20. Installed-Size",
        "The disk space is given as the integer value of the estimated installed size in bytes,"
        " divided by 1024 and rounded up.",
        "5.6.21. Files",
        "This field contains a list of files.",
    ]
    size = lambda _q, ss: [0.9 if "disk space" in s else 0.1 for s in ss]  # noqa: E731
    answer = extractive("How is the installed size given?", [hit], [0.8], POLICY, size, 0.5)
    assert answer.answer == (
        "The disk space is given as the integer value of the estimated installed size in bytes,"
        " divided by 1024 and rounded up. [1]"
    )


def test_a_fragment_with_no_word_is_never_joined_to_a_quote() -> None:
    """Sphinx's contents list splits at its numbers' full stops ("• 1." and "About this
    manual"): the page's version sentence was quoted with "• 1." after it."""
    text = (
        "This is Debian Policy version 4.6.2.0, released on 2022-12-17.\n\n"
        "• 1. About this manual\n\n• 1.1. Scope"
    )
    hit = _whole(text, "index.html", "Debian Policy Manual")
    released = lambda _q, ss: [0.9 if "released" in s else 0.1 for s in ss]  # noqa: E731
    answer = extractive("When was it released?", [hit], [0.8], POLICY, released, 0.5)
    assert answer.answer == "This is Debian Policy version 4.6.2.0, released on 2022-12-17. [1]"


class _ScriptedJudge:
    """The answer model's place in the quoter, with scripted chances: what the quoter does
    with them is under test, not the model."""

    def __init__(self, chances: dict[str, float]) -> None:
        self.chances = chances

    def probabilities(
        self, question: str, sentences: list[str], context: list[tuple[float, str]]
    ) -> list[float]:
        return [
            max((p for word, p in self.chances.items() if word in s), default=0.01)
            for s in sentences
        ]


EQUIPMENT_PAGE = (
    "<h1>Remote work</h1><h2>Equipment</h2><p>The company lends a docking station to every"
    " remote worker. To book a collection, run the following command:</p>"
    "<pre>book-equipment --item dock\n  --office main</pre>"
    "<h2>Mandatory Training</h2><p>All staff complete the fire safety course.</p>"
)


def test_a_refusals_closest_passage_is_quoted_as_an_answer_would_be() -> None:
    """Refused, "How do I book a collection?" pointed to "…run the following command:" without
    the command the colon announces; and a passage no sentence of which covers the question was
    shown by its shortest span, a heading ("Mandatory Training")."""
    from rag_server.quoting import AnswerModelQuoter

    hit = _loaded(EQUIPMENT_PAGE)
    judge = _ScriptedJudge({"collection": 0.2})
    quoter = AnswerModelQuoter(judge, POLICY, threshold=0.25)  # type: ignore[arg-type]
    verified, ranked = quoter.quote("How do I book a collection of my docking station?", [hit])
    assert verified.status == "insufficient_evidence"
    assert ranked[0][1].text == (
        "To book a collection, run the following command:\n\nbook-equipment --item dock\n"
        "  --office main"
    )
    assert hit.chunk.text[ranked[0][1].start : ranked[0][1].end] == ranked[0][1].text
    headings = {heading for _, heading in hit.chunk.headings}
    assert best_quote(1, hit, "Who repairs a broken chair?").text not in headings


def test_one_text_ingested_twice_is_quoted_once() -> None:
    """Debian Policy as its HTML page and as its reST source: the same sentence, wrapped and
    quoted differently, was quoted twice ("…it\nis left alone. [1] …it is left alone. [2]")."""
    page = _whole(
        "If neither the user nor the package maintainer has changed the file, it is left alone. "
        "Otherwise the package is in a “Half-Configured” state.",
        "ch-files.html",
        "Files",
    )
    source = _whole(
        "If neither the user nor the package maintainer has changed the file, it\nis left "
        'alone. Otherwise the package is in a "Half-Configured" state.',
        "ch-files.rst.txt",
        "Files",
    )
    assert repeats(page.chunk.text, source.chunk.text)
    assert not repeats("It is left alone.", "It is not left alone.")
    assert repeats("It is left alone.", "Otherwise: it is left\nalone. It is")
    assert not repeats("It is not left.", "It is left alone.") and not repeats("", "It is.")
    alone = lambda _q, ss: [0.9 if "left alone" in s else 0.5 for s in ss]  # noqa: E731
    result = extractive("Is it left alone?", [page, source], [0.8, 0.8], POLICY, alone, 0.3)
    (quote,) = result.citations  # the page's two sentences; the source says nothing more
    assert quote.hit.chunk.document_id == "ch-files.html" and "Half-Configured" in quote.text
    # The copy's quote runs on past the sentence the page's quote holds: still one quote.
    page = _whole("Scripts must not use --local.", "div.html", "Diversions")
    source = _whole("Scripts must not use\n--local. Use alternatives.", "div.rst.txt", "Diversions")
    local = lambda _q, ss: [0.9 if "local" in s else 0.1 for s in ss]  # noqa: E731
    result = extractive("May I use --local?", [page, source], [0.8, 0.8], POLICY, local, 0.3)
    assert [q.text for q in result.citations] == ["Scripts must not use --local."]


def test_a_quote_of_a_sphinx_source_copy_cites_the_page_that_holds_it() -> None:
    """Retrieval ranked the source copy's passage first, cut differently from the page's: the
    answer cited `_sources/ch-files.rst.txt`, where the page a reader checks holds the quote."""
    rule = "Shared libraries must be built with -fPIC. Ask on the list first."
    source = _whole(f"Libraries\n\n{rule}", "_sources/ch-files.rst.txt", "Files")
    page = _whole(f"Other rules come before. {rule}", "ch-files.html", "Files", start=900)
    fpic = lambda _q, ss: [0.9 if "-fPIC" in s else 0.1 for s in ss]  # noqa: E731
    result = extractive("Which flag?", [source, page], [0.8, 0.7], POLICY, fpic, 0.3)
    (quote,) = result.citations
    assert quote.hit is page and quote.text == rule
    assert quote.start == 900 + page.chunk.text.index(rule) and quote.end == quote.start + len(rule)
    # Where no page holds the words, the copy is cited; a file of that name elsewhere is no copy.
    alone = extractive("Which flag?", [source], [0.8], POLICY, fpic, 0.3)
    assert [q.hit for q in alone.citations] == [source]
    notes = _whole(f"Libraries\n\n{rule}", "notes/ch-files.rst.txt", "Files")
    kept = extractive("Which flag?", [notes, page], [0.8, 0.7], POLICY, fpic, 0.3)
    assert [q.hit for q in kept.citations] == [notes]


def test_a_refusal_points_to_the_closest_sentence_then_to_retrieval_s_order() -> None:
    """Below the threshold, the answer model's order after its first choice is weak: the three
    passages a refusal shows are its closest sentence's, then the best retrieved of the rest."""
    from rag_server.answers import closest
    from rag_server.quoting import AnswerModelQuoter

    hits = [
        _whole(f"The {word} policy covers travel for every member of staff.", f"{k}.md", word)
        for k, word in enumerate(("parking", "bicycle", "mileage", "lodging"), start=1)
    ]
    judge = _ScriptedJudge({"mileage": 0.2, "lodging": 0.15, "bicycle": 0.1, "parking": 0.05})
    quoter = AnswerModelQuoter(judge, POLICY, threshold=0.25)  # type: ignore[arg-type]
    verified, ranked = quoter.quote("How much is paid per kilometre?", hits)
    assert verified.status == "insufficient_evidence"
    assert [q.hit.chunk.document_id for _, q in ranked] == ["3.md", "4.md", "2.md", "1.md"]
    assert [q.hit.chunk.document_id for q in closest(ranked)] == ["3.md", "1.md", "2.md"]
    assert [q.n for q in closest(ranked[:1])] == [3]


def _pdf_page(text: str, headings: list[tuple[str, str]]) -> Hit:
    """A chunk as the PDF reader records it: each outline title at the start of the line that
    shows it, number and page case included (`line` in `text`, `title` recorded)."""
    chunk = Chunk(
        chunk_id="c", document_id="ref.pdf", source="ref.pdf", title="Ref", text=text,
        start=100, end=100 + len(text), chunk_index=0, chunk_count=1, content_hash="h",
        pipeline="p", ingested_at="t",
        headings=tuple((100 + text.index(line), title) for line, title in headings),
    )  # fmt: skip
    return Hit(chunk, 0.8)


TESTING_FAQ = (
    "RESOURCES FOR DEBIAN MEMBERS\n\nThe bug count is the number of release-critical bugs in "
    "the package. It is counted for each release architecture.\n\n"
    "5.14.4.2 How could installing a package into testing possibly break other packages?\n\n"
    "The structure of the distribution archives is such that they can only contain one version "
    "of a package. A package that is installed may therefore replace another."
)
FAQ_HEADINGS = [
    ("RESOURCES FOR DEBIAN MEMBERS", "Resources for Debian Members"),
    ("5.14.4.2 How could", "How could installing a package into testing possibly break other "
     "packages?"),
]  # fmt: skip


def test_a_pdf_heading_is_its_whole_line_and_never_an_answer() -> None:
    """The PDF reader records the outline's title where its line starts, after the section
    number and in the page's case: read by the title alone, the Developer's Reference's
    headings were sentences, and one that asks a question a candidate answer."""
    hit = _pdf_page(TESTING_FAQ, FAQ_HEADINGS)
    text = hit.chunk.text
    spans = [text[lo:hi] for lo, hi in passage_spans(hit)]
    assert "RESOURCES FOR DEBIAN MEMBERS" in spans
    assert (
        "5.14.4.2 How could installing a package into testing possibly break other packages?"
        in spans
    )
    asks = lambda _q, ss: [0.9 if "How could" in s else 0.2 for s in ss]  # noqa: E731
    result = extractive("How could it break?", [hit], [0.8], POLICY, asks, 0.3)
    assert result.status == "insufficient_evidence"  # the heading is no candidate
    other = _pdf_page(TESTING_FAQ, [("5.14.4.2 How could", "Something else")])
    assert "5.14.4.2" in extractive("How could it break?", [other], [0.8], POLICY, asks, 0.3).answer


def test_a_refusal_s_closest_passage_is_shown_with_its_neighbours_up_to_a_heading() -> None:
    """Its reader looks for the answer near the sentence that came closest: the sentences
    around it are shown, up to a quote's length, never past a heading."""
    hit = _pdf_page(TESTING_FAQ, FAQ_HEADINGS)
    text = hit.chunk.text
    lo = text.index("A package that")
    quote = Quote(2, hit, 100 + lo, 100 + len(text), text[lo:])
    shown = widened(quote)
    assert shown.n == 2 and shown.text == text[text.index("The structure") :]
    assert text[shown.start - 100 : shown.end - 100] == shown.text
    lo = text.index("It is counted")
    hi = text.index("\n\n5.14")
    first = widened(Quote(1, hit, 100 + lo, 100 + hi, text[lo:hi]))
    assert first.text == text[text.index("The bug count") : hi]  # neither heading joins it
    assert widened(quote, max_words=12).text == quote.text  # its neighbour would not fit
    # Nor past a page number or a footnote's label: a fragment without a letter.
    page = "Ask on the list first. There are other lists.\n\n15\n\n2\n\nSimilar uploads differ."
    numbered = _whole(page, "devref.pdf", "Developer's Reference")
    hi = page.index("\n\n15")
    lo = page.index("There")
    assert widened(Quote(1, numbered, lo, hi, page[lo:hi])).text == page[:hi]
    lo = page.index("Similar")
    assert widened(Quote(1, numbered, lo, len(page), page[lo:])).text == page[lo:]
