"""The answer model decides (rag_server/answerability.py): paraphrased, misspelt and long
questions are answered from the example documents with the shipped defaults; questions the
documents are silent on, or that change one fact, are refused with the closest passages; a
question in another language is told so. Real embedder, Chroma, answer model and app."""

from __future__ import annotations

import json

import pytest
from litestar.testing import TestClient

from rag_core.embedding import Embedder
from rag_core.settings import Settings, load_settings
from rag_server.answer_scorer import PACKAGED, AnswerScorer
from rag_server.answerability import (
    FEATURES,
    Answerability,
    Combiner,
    can_answer,
    coverage,
    names_in,
    question_type,
    type_match,
)
from rag_server.language import focus, reads_as_english
from tests.conftest import EXAMPLES, ClientFor, ScriptedGenerator

LONG = (
    "I joined last month and I am still finding my way around the policies. My manager said I "
    "should read everything on the intranet, and I have, but there is a lot of it: expenses, "
    "travel, the IT rules, the building, who to call when the printer jams, how to book a room, "
    "what to do on the first day, and so on. A colleague told me that the rules on leave changed "
    "last year and that some of the older documents are out of date, which is confusing, "
    "because I want to plan ahead properly. My partner and I are expecting our first child in "
    "the spring, and I would like to understand my options before I talk to my manager about it, "
    "so that I can plan the handover of my projects and make sure nothing is left undone while "
    "I am away. I have looked at the leave policy but I am not sure I read it right. I also do not "
    "know whether it matters that I have only been here a short time, or whether the leave is "
    "paid in full or only in part, and who I should tell first. So my question is simple: how "
    "long is the fully paid parental leave?"
)
# A long message whose question names its subject by a pronoun, two sentences back.
CAR = (
    "I have just started in the sales team and I will be visiting clients across the region most "
    "weeks, which means a lot of driving. The company does not give me a car, so I will use my "
    "own one, a small hatchback I bought last year. It is quite economical and I keep it in good "
    "condition. What rate do I get for it?"
)
# Answered outright with the shipped threshold.
ANSWERED = [
    ("how many days of paid anual leave do i get per yeer?", "27 days"),  # typos
    # Read as "day", "annual" and "year" (rag_server/spelling.py); refused before (p 0.21).
    ("how many dayz of paid anual leave do i get per yeer?", "27 days"),
    (LONG, "18 weeks"),  # the real question at the end of 200 words
    ("How long is the probation period?", "6 months"),
    # Its best sentence is "It replaces the domestic meal allowance while the employee is
    # abroad…": the quote goes back to the sentence that names the per diem and its amount.
    ("What is the meal allowance abroad?", "€68"),
]
# Paraphrases the answer model reads less surely: answered, or refused with the passage that
# answers shown first among the closest ones (a refusal that points to the answer).
ANSWERED_OR_POINTED = [
    ("How much do I get back per kilometre if I drive my own car?", "€0.31"),
    ("Where do I pick up my laptop when I start?", "4.12"),
    (CAR, "€0.31"),
]
REFUSED = [
    "What is the company's policy on bringing dogs into the office?",
    "How many days of paid leave do employees get for jury duty?",
    "Which stock options do new starters receive, and when do they vest?",
]


def _defaults(examples: Settings) -> Settings:
    """The shipped grounding defaults (the `examples` fixture pins orchestration thresholds)."""
    return examples.model_copy(update={"grounding": load_settings().grounding})


@pytest.fixture
def asker(examples: Settings, client_for: ClientFor) -> tuple[TestClient, ScriptedGenerator]:  # type: ignore[type-arg]
    generator = ScriptedGenerator(["never asked"], style="base")
    return client_for(_defaults(examples), generator), generator


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_misspelt_long_and_plain_questions_are_answered_from_the_documents(
    asker: tuple[TestClient, ScriptedGenerator],  # type: ignore[type-arg]
    question: str,
    gold: str,
) -> None:
    client, generator = asker
    body = client.post("/v1/ask", json={"question": question}).json()
    assert body["status"] == "extractive", body
    assert gold in body["answer"], body["answer"]
    assert generator.calls == []  # a base model is never asked to write
    assert [c["n"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))


@pytest.mark.parametrize(("question", "gold"), ANSWERED_OR_POINTED)
def test_a_paraphrase_is_answered_or_refused_pointing_first_to_the_passage_that_answers(
    asker: tuple[TestClient, ScriptedGenerator],  # type: ignore[type-arg]
    question: str,
    gold: str,
) -> None:
    client, _ = asker
    body = client.post("/v1/ask", json={"question": question}).json()
    if body["status"] == "extractive":
        assert gold in body["answer"], body["answer"]
    else:
        assert body["status"] == "insufficient_evidence"
        assert gold in body["related"][0]["quote"], body["related"]


@pytest.mark.parametrize("question", REFUSED)
def test_questions_the_documents_do_not_answer_are_refused_with_the_closest_passages(
    asker: tuple[TestClient, ScriptedGenerator],  # type: ignore[type-arg]
    question: str,
) -> None:
    client, _ = asker
    body = client.post("/v1/ask", json={"question": question}).json()
    assert body["status"] == "insufficient_evidence", body["answer"]
    assert body["citations"] == [] and body["related"]
    quotes = [r["quote"] for r in body["related"]]
    assert len(quotes) == len(set(quotes))  # overlapping chunks do not repeat a passage


def test_every_example_fact_is_answered_and_cited_or_refused_pointing_to_it(
    asker: tuple[TestClient, ScriptedGenerator],  # type: ignore[type-arg]
) -> None:
    """No wrong answer: each of the 40 facts is quoted from its document, or refused with the
    sentence that holds it first among the closest passages."""
    client, _ = asker
    facts = json.loads((EXAMPLES.parent / "facts.json").read_text())
    right = 0
    for fact in facts:
        body = client.post("/v1/ask", json={"question": fact["question"]}).json()
        if body["status"] == "extractive":
            assert fact["answer"] in body["answer"], (fact, body["answer"])
            assert fact["source"] in {c["source"] for c in body["citations"]}
            right += 1
        else:
            assert fact["answer"] in body["related"][0]["quote"], (fact, body["related"])
    assert right >= 34, f"{right} of {len(facts)}"


def test_a_question_in_another_language_is_told_so_not_that_the_documents_are_silent(
    asker: tuple[TestClient, ScriptedGenerator],  # type: ignore[type-arg]
) -> None:
    client, _ = asker
    body = client.post(
        "/v1/ask", json={"question": "Combien de jours de congés payés avons-nous par an ?"}
    ).json()
    assert body["status"] == "insufficient_evidence"
    assert "English" in body["answer"]
    assert reads_as_english("How many days of leave do I get?")
    assert not reads_as_english("Wie viele Urlaubstage habe ich pro Jahr?")
    assert not reads_as_english("年假有多少天？")


def test_a_long_message_is_read_from_the_sentence_that_asks() -> None:
    """The asking sentence alone, unless it points back to the ones before it."""
    assert focus(LONG) == "So my question is simple: how long is the fully paid parental leave?"
    pointing = (
        "I wrote a helper with a default argument that is a list, and every call appends to it. "
        * 3
        + "I expected a fresh empty list on every call. Why does this happen?"
    )
    assert focus(pointing) == "I expected a fresh empty list on every call. Why does this happen?"
    short = "How do I reset my password?"
    assert focus(short) == short  # a short message is read whole
    # A full-length question that names its subject only by a pronoun keeps the sentence before.
    context = "I run the patient portal for a small clinic and we use the hosted platform. " * 3
    breach = (
        context
        + "We just found out one of our databases holding unsecured ePHI was exposed last week. "
        + "What's the absolute latest we can tell the vendor about it?"
    )
    assert focus(breach) == (
        "We just found out one of our databases holding unsecured ePHI was exposed last week. "
        "What's the absolute latest we can tell the vendor about it?"
    )
    # The sentence before points back too: the subject is one further.
    assert focus(CAR) == (
        "The company does not give me a car, so I will use my own one, a small hatchback I bought "
        "last year. It is quite economical and I keep it in good condition. "
        "What rate do I get for it?"
    )
    plain = context + "What's the absolute latest we can report a breach of unsecured ePHI?"
    assert focus(plain) == "What's the absolute latest we can report a breach of unsecured ePHI?"


def test_the_model_prefers_the_sentence_that_answers_over_one_about_the_topic(
    embedder: Embedder,
) -> None:
    """The model ranks the answer first; the shipped combination of it with the cheap features
    (what the server gates on) quotes the answer and refuses the sentence that is only about it."""
    question = "How much life insurance coverage does the company provide?"
    answers = "The company offers a $400,000 life insurance policy to all staff."
    about = "Life insurance matters, and staff should think about their families' needs."
    elsewhere = "Staff may choose their own dental plan."
    p_answers, p_about, p_elsewhere = AnswerScorer.load().score(
        question, [answers, about, elsewhere]
    )
    assert p_answers > p_about > p_elsewhere
    judge = Answerability.load(embedder)
    sentences = [answers, about]
    passage = (0.6, " ".join(sentences))
    combined = judge.probabilities(question, sentences, [passage, passage])
    threshold = load_settings().grounding.answer_threshold
    assert combined[0] >= threshold > combined[1], combined


def test_a_question_asking_for_a_number_is_never_answered_by_a_sentence_without_one(
    embedder: Embedder,
) -> None:
    """NIST's adversarial "After how many days…?" was answered with the sentence that says a
    limit may be set (p 0.70): its words match, and the answer-type feature only weighs against
    it. A sentence with no number, in digits or words, cannot answer how many, how much or how
    long; one with a number is scored as before, and other questions are not affected."""
    judge = Answerability.load(embedder)
    question = "After how many days can a suspended authenticator no longer be reactivated?"
    vague = (
        "The CSP MAY set a time limit after which a suspended authenticator can no longer be "
        "reactivated."
    )
    stated = "A suspended authenticator can no longer be reactivated after thirty days."
    passage = (0.6, f"{vague} {stated}")
    p_vague, p_stated = judge.probabilities(question, [vague, stated], [passage, passage])
    assert p_vague == 0.0 < p_stated
    open_question = "Who may set a time limit for reactivating a suspended authenticator?"
    assert judge.probabilities(open_question, [vague], [passage])[0] > 0.0
    assert can_answer("amount", "It costs €20.") and can_answer("count", "Two spaces are free.")
    assert not can_answer("duration", "Claims are paid promptly.") and can_answer(None, "Yes.")


def test_cheap_features_read_what_the_question_asks_for() -> None:
    assert question_type("How long is the probation period?") == "duration"
    assert question_type("How much is the meal allowance?") == "amount"
    assert question_type("How many bicycle spaces are there?") == "count"
    assert question_type("Who approves claims?") is None
    # "when" asks for a time only as the question's own word; after another it is a conjunction,
    # and a time-free answer ("…send mail to debian-legal@…") was refused as a wrong type
    for asks_when in (
        "When is the FY26 self-assessment due?",
        "When's the due date?",
        "by when must I file?",
        "when to file my voucher",
        "When do I get paid?",
    ):
        assert question_type(asks_when) == "date", asks_when
    assert question_type("Which mailing list should I ask when I'm in doubt?") is None
    assert question_type("When I orphan a package, who should I set as maintainer?") is None
    assert question_type("How many bits must the salt be when we store hashes?") == "count"
    assert type_match("duration", "Probation lasts 6 months.") == 1.0
    assert type_match("amount", "Meals are covered by the company.") == -1.0
    assert coverage("meal allowance per day", "The meal allowance is €42 per day.") == 1.0
    # an adversarial question changes one name: the passage does not hold it
    assert names_in("How much safe leave does Massachusetts give?", "Oregon gives 40 hours.") == 0
    assert names_in("How much leave do I get?", "Anything.") == 1.0
    assert names_in("Who leads GSA's TTS when I'm away?", "The TTS of GSA is led by…") == 1.0
    assert names_in("Who leads the TTS?", "GSA’s TTS is led by…") == 1.0
    assert names_in("Where is L'Americain?", "L'Américain is a hotel in Tangier.") == 1.0
    assert names_in("Which UID has nobody?", "UIDs 0-99 are allocated.") == 1.0
    assert names_in("Where is Zurich?", "Bern is the capital.") == 0.0


def test_the_shipped_combiner_reads_the_features_this_code_computes() -> None:
    spec = json.loads((PACKAGED / "combiner.json").read_text())
    assert tuple(spec["features"]) == FEATURES
    combiner = Combiner.load(PACKAGED / "combiner.json")
    assert len(combiner.weights) == len(FEATURES)
    # the shipped default threshold is the one the leave-one-corpus-out suite chose
    assert load_settings().grounding.answer_threshold == spec["answer_threshold"]
