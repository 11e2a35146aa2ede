"""A sentence that states the opposite of what the question asks (rag_server/contrast.py), and the
penalty the answer model's logit takes for it (rag_server/answerability.py)."""

from __future__ import annotations

import json

import pytest

from rag_core.embedding import Embedder
from rag_server.answer_scorer import PACKAGED
from rag_server.answerability import Answerability
from rag_server.contrast import OPPOSITES, Opposites, contradicts

WORDNET = Opposites.load()


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        # antonyms from WordNet, also inflected
        (
            "The fictional Hoffler Klinik is a public medical what?",
            "The Ice Q Restaurant stood in for the fictional Hoffler Klinik, a private clinic.",
        ),
        (
            "Which string method pads a numeric string on the right with zeros?",
            "The method str.zfill() pads a numeric string on the left with zeros.",
        ),
        ("Which fees increased in 2021?", "Registration fees decreased in 2021."),
        # negation by prefix
        (
            "Who described the film as consistent?",
            "Seitz described Spectre as inconsistent and unable to capitalise on its potential.",
        ),
        # another ordinal
        (
            "Who returned for his eighth appearance as James Bond?",
            "Daniel Craig returned for his fourth appearance as James Bond.",
        ),
        # a rank among primary, secondary, tertiary, as among ordinals
        (
            "Which variable in the sys module defines the tertiary prompt?",
            "The variables sys.ps1 and sys.ps2 define the strings used as primary and secondary "
            "prompts.",
        ),
        # one part of a hyphenated word: "single-precision" against "double precision"
        (
            "How many bits of precision does an IEEE-754 single-precision float contain?",
            "IEEE-754 doubles contain 53 bits of precision, as double precision floats do.",
        ),
        # the same identifier with other digits, another year
        (
            "Which FIPS 140 level applies at AAL1?",
            "Verifiers at AAL2 SHALL be validated to FIPS 140 Level 1.",
        ),
        (
            "What was the maximum salary for overtime in 2022?",
            "Total pay cannot exceed the maximum salary, which is $191,900 as of 2024.",
        ),
        # another month or weekday, as another ordinal
        (
            "The launch took place on 26 December of what year?",
            "The launch took place in London on 26 October 2015.",
        ),
        ("When does the office close on Fridays?", "On Mondays the office closes at 18:00."),
        # a bound the other way, in other words than WordNet pairs
        (
            "What is the maximum password length verifiers may enforce?",
            "Verifiers SHOULD permit memorized secrets at least 64 characters in length.",
        ),
        (
            "What's the largest font size recommended for the display?",
            "A minimum font size of 12 points as long as the text fits on the device.",
        ),
        (
            "What is the shortest notice an employee must give?",
            "Employees may give up to 12 weeks of notice before they leave.",
        ),
    ],
)
def test_a_sentence_stating_the_opposite_contradicts_the_question(
    question: str, sentence: str
) -> None:
    assert contradicts(question, sentence, WORDNET)


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        # the answer itself: every word the question turns on is there
        (
            "How many days of annual leave do full-time employees get?",
            "Full-time employees get 27 days of annual leave per year.",
        ),
        # the question's word is in the sentence beside its opposite: a range, not a contrast
        (
            "What is the maximum hotel rate?",
            "Hotel rates have a minimum of €60 and a maximum of €165 per night.",
        ),
        # a paraphrase, not an opposite
        (
            "How much do I get back per kilometre if I drive my own car?",
            "Mileage for private cars is reimbursed at €0.31 per kilometre.",
        ),
        # the question's word stated in another inflection ("present"/"presented") is not
        # missing, so the opposite beside it ("future") is no contrast
        (
            "Is the commit hash present in the field?",
            "The field holds the commit hash, presented in full; future versions may add more.",
        ),
        # a hyphenated word stated whole, or its parts apart, is not missing
        (
            "Which single-user mode does the installer offer?",
            "The installer offers a single user mode, not a multi-user one.",
        ),
        # same digits in another identifier's place is no contrast: AAL2 is asked and stated
        ("Which FIPS 140 level applies at AAL2?", "Verifiers at AAL2 SHALL use FIPS 140 Level 1."),
        # the same weekday, one plural; "May" and "March" are verbs as often as months
        ("When does the office close on Friday?", "The office closes at 16:00 on Fridays."),
        ("May I carry leave over into March?", "Leave can be carried over until 31 January."),
        # a bound the same way, in other words
        (
            "What is the minimum password length?",
            "Passwords must be at least 8 characters long.",
        ),
        ("How long can the longest upload delay be?", "An upload may be delayed up to 15 days."),
    ],
)
def test_a_sentence_that_answers_or_paraphrases_does_not(question: str, sentence: str) -> None:
    assert not contradicts(question, sentence, WORDNET)


def test_the_opposites_are_wordnets_and_carry_its_licence() -> None:
    text = OPPOSITES.read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    pairs = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert len(pairs) > 3000 and all(len(p) == 2 and p[0] < p[1] for p in pairs)
    assert {"public", "private"} <= set(WORDNET.of("public")) | {"public"}
    assert "worst" in WORDNET.of("best") and "best" in WORDNET.of("worst")


def test_the_answer_model_logit_takes_the_shipped_penalty_where_the_sentence_contradicts(
    embedder: Embedder,
) -> None:
    """The penalty is what combiner.json says (chosen leaving one corpus out), and only the
    contradicting sentence's logit moves."""
    penalty = json.loads((PACKAGED / "combiner.json").read_text())["contrast_penalty"]
    assert penalty > 0
    judge = Answerability.load(embedder)
    question = "Forbes' Scott Mendelson described the movie as the best what in 30 years?"
    sentences = [
        "Forbes' Scott Mendelson denounced Spectre as the worst 007 movie in 30 years.",
        "Forbes' Scott Mendelson described Spectre as the best 007 movie in 30 years.",
    ]
    passages = [(0.6, " ".join(sentences))] * 2
    raw = judge.scorer.logits(question, sentences)
    features = judge.features(question, sentences, passages)
    assert judge.contradicted(question, sentences) == [True, False]
    assert features[0][0] == pytest.approx(raw[0] - penalty)
    assert features[1][0] == pytest.approx(raw[1])
