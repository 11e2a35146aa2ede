"""Batches for transformer encoders on the CPU: similar lengths together, few padded tokens each.

A batch is padded to its longest text, and the padding is computed like any other token.
Query-time inputs mix lengths, so one batch of all of them did two to three times the work
needed: a question's 27 candidate sentences, of 26 word pieces on average, were all padded to 85.
Sorting longest first and capping the padded tokens per batch keeps each batch's texts close in
length and its activations small enough to stay in cache. On the 2-core AVX2 machine this halved
the embedder's time on a question's candidates (bench/results/batching.md), and bulk ingestion
lost nothing (128 stored chunks: 13.9 s, 15.6 s in batches of 64).
"""

from __future__ import annotations

from collections.abc import Sequence

TOKENS_PER_BATCH = 512


def token_batches(
    lengths: Sequence[int], max_items: int, max_tokens: int = TOKENS_PER_BATCH
) -> list[list[int]]:
    """Indices into `lengths`, longest first, cut into batches of at most `max_items` texts whose
    padded size (count x longest) is at most `max_tokens`; a text longer than that goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    lo = 0
    while lo < len(order):
        longest = max(1, lengths[order[lo]])
        size = max(1, min(max_items, max_tokens // longest))
        batches.append(order[lo : lo + size])
        lo += size
    return batches
