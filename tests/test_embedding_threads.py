"""The embedder shared by threads: uploads chunk (counting word pieces) while queries encode, in
worker threads at the same time, with the real model and tokenizer."""

from __future__ import annotations

import logging
import sys
import threading

import numpy as np
import pytest

from rag_core.embedding import Embedder

# About 1,200 word pieces: over the encoder's length, so encoding must truncate and counting not.
LONG = "The travel policy caps hotel stays at 165 euros per night in capital cities. " * 80


def test_chunking_and_encoding_at_once_never_raise_or_change_each_other(
    embedder: Embedder,
) -> None:
    """Found under mixed load: one tokenizer for both, whose truncation setting each call resets,
    so a count could come back cut at the encoder's length and an encode run untruncated (or raise
    "Already borrowed", with older `tokenizers`)."""
    pieces = len(embedder.tokenize(LONG))
    vectors = embedder.embed_texts([LONG, LONG[:300]])
    assert pieces > 2 * embedder.max_tokens  # counting must see every piece
    rounds = 40
    start = threading.Barrier(4, timeout=60)
    failures: list[str] = []

    def chunking() -> None:
        start.wait()
        for _ in range(rounds):
            try:
                count = len(embedder.tokenize(LONG))
            except Exception as exc:  # what the issue saw; recorded, then the test fails
                failures.append(f"tokenize raised {exc!r}")
                return
            if count != pieces:
                failures.append(f"counted {count} pieces, not {pieces}")

    def encoding() -> None:
        start.wait()
        for _ in range(rounds // 4):
            try:
                got = embedder.embed_texts([LONG, LONG[:300]])
            except Exception as exc:
                failures.append(f"encode raised {exc!r}")
                return
            if not np.allclose(got, vectors, atol=1e-5):
                failures.append("an encode gave other vectors")

    threads = [threading.Thread(target=f) for f in (chunking, chunking, encoding, encoding)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a race shows within a few rounds
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[:5]


@pytest.mark.parametrize("text", [LONG, "Ünïcode, [brackets] & e-mail: a.b@c.de — 09:30"])
def test_word_pieces_are_the_tokenizers_own(embedder: Embedder, text: str) -> None:
    """The counter is a private copy of the model's tokenizer: the same pieces, special tokens
    left out, nothing truncated."""
    assert embedder.tokenize(text) == embedder.tokenizer.tokenize(text)


def test_counting_a_long_text_does_not_warn_about_the_model_length(
    embedder: Embedder, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Counting is meant to see texts longer than the model reads; transformers' warning about
    'Token indices sequence length' was noise in every upload's log. (transformers logs to its
    own stderr handler, once per tokenizer: hence a fresh one, and the captured stderr.)"""
    fresh = Embedder(
        embedder.encoder,
        type(embedder.tokenizer).from_pretrained(embedder.tokenizer.name_or_path),
        embedder.identity,
        embedder.batch_size,
        embedder.max_tokens,
    )
    with caplog.at_level(logging.WARNING):
        assert len(fresh.tokenize(LONG)) > 512
    assert "sequence length is longer" not in caplog.text + capfd.readouterr().err
