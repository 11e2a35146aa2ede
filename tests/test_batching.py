"""Query-time batching: the embedder runs texts in batches of similar length with few padded tokens
(rag_core/batching.py) and gives the same vectors as one text at a time; the answer model scores
each (question, sentence) pair alone, so a sentence's score does not depend on its neighbours.
Real embedder and answer model."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag_core.batching import TOKENS_PER_BATCH, token_batches
from rag_core.embedding import Embedder, Encoder
from rag_server.answer_scorer import AnswerScorer

QUESTION = "How much life insurance coverage does the company provide?"
SHORT = "Staff may choose their own dental plan."
ANSWER = "The company offers a $400,000 life insurance policy to all staff."
LONG = " ".join(
    f"Clause {n}: the insurer reviews every claim within ten working days of receiving it."
    for n in range(1, 20)
)


def test_batches_hold_similar_lengths_and_bounded_padding() -> None:
    lengths = [20, 250, 21, 90, 19, 600, 88]
    batches = token_batches(lengths, max_items=3, max_tokens=200)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [5] and batches[1] == [1]  # longer than the budget: alone
    assert batches[2] == [3, 6]  # 2 x 90 <= 200
    assert batches[3] == [2, 0, 4]  # three items at most
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * lengths[batch[0]] <= 200
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)
    assert token_batches([], max_items=8) == []


class _Recording:
    """The real encoder, recording the texts of every batch it is given."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        self.batches.append(list(texts))
        return self.inner.encode(texts, batch_size)


def test_mixed_lengths_embed_in_small_batches_to_the_same_vectors(embedder: Embedder) -> None:
    texts = [SHORT, LONG, ANSWER, *(f"{SHORT} Option {n}." for n in range(30)), QUESTION]
    recording = _Recording(embedder.encoder)
    batched = Embedder(
        recording, embedder.tokenizer, embedder.identity, embedder.batch_size, embedder.max_tokens
    )
    vectors = batched.embed_texts(texts)
    alone = np.stack([embedder.encoder.encode([text], 1)[0] for text in texts])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)  # same vectors, in input order
    assert len(recording.batches) > 1  # one batch of all of them padded every text to LONG's size
    for batch in recording.batches:
        longest = max(embedder.count_tokens(text) + 2 for text in batch)
        assert len(batch) == 1 or len(batch) * min(longest, embedder.max_tokens) <= TOKENS_PER_BATCH
    assert len(batched.embed_texts([])) == 0


def test_a_sentence_scores_the_same_whatever_is_scored_beside_it() -> None:
    """The int8 model's activation scale is taken per run: batched, the answer's logit moved
    with the other candidates (and their padding). Each pair alone scores the same every time."""
    scorer = AnswerScorer.load()
    (alone,) = scorer.logits(QUESTION, [ANSWER])
    beside = scorer.logits(QUESTION, [LONG, ANSWER, SHORT])
    assert beside[1] == alone
    assert scorer.logits(QUESTION, [SHORT, ANSWER]) == [*scorer.logits(QUESTION, [SHORT]), alone]
    assert scorer.logits(QUESTION, []) == []


def test_an_ask_embeds_its_question_once(embedder: Embedder) -> None:
    """Retrieval and the candidates' cosines both need the question's vector: the second asks the
    Embedder again and gets the same vector without running the encoder."""
    recording = _Recording(embedder.encoder)
    own = Embedder(
        recording, embedder.tokenizer, embedder.identity, embedder.batch_size, embedder.max_tokens
    )
    first = own.embed_query(QUESTION)
    first[0] = 99.0  # a caller's copy: changing it changes nothing kept
    again = own.embed_query(QUESTION)
    assert recording.batches == [[QUESTION]]
    np.testing.assert_allclose(again, embedder.encoder.encode([QUESTION], 1)[0], atol=1e-6)
    own.embed_query(SHORT)
    assert recording.batches == [[QUESTION], [SHORT]]


class _Threads:
    """The real answer-model session, recording which thread ran each pair."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.threads: list[int] = []

    def get_inputs(self) -> Any:
        return self.inner.get_inputs()

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.threads.append(threading.get_ident())
        return self.inner.run(names, feeds)


def test_pairs_run_side_by_side_and_score_as_one_after_another() -> None:
    """A pair is too small to split across cores well, so a question's pairs run side by side,
    one core each; each still runs alone, so the logits are those of one after another."""
    serial = AnswerScorer.load(workers=1)
    loaded = AnswerScorer.load(workers=2)
    recording = _Threads(loaded._session)
    scorer = AnswerScorer(recording, loaded._tokenizer, loaded.identity, workers=2)
    sentences = [SHORT, ANSWER, LONG, *(f"{SHORT} Option {n}." for n in range(9))]
    np.testing.assert_allclose(
        scorer.logits(QUESTION, sentences), serial.logits(QUESTION, sentences), atol=1e-5
    )
    assert len(recording.threads) == len(sentences)  # one run per pair, in input order above
    assert len(set(recording.threads)) == 2 and threading.get_ident() not in recording.threads
