"""The evidence gate: from the retrieval scores alone, before any model runs, whether the passages
could support an answer at all, and whether they are strong enough to hand to the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_core.records import Hit
from rag_core.settings import GroundingSettings


@dataclass(frozen=True)
class Evidence:
    """The gate's decision on one question's passages."""

    # No passage reaches min_relevance: nothing could support a claim, so refuse at once.
    refused: bool
    # The best passage is below the gate: the model is not asked to write from it, and a quote
    # from it must match the question more closely (calibrated: README, Evaluation).
    weak: bool
    # The score a quote must reach; None: the extractive threshold.
    quote_floor: float | None


def weigh(hits: Sequence[Hit], grounding: GroundingSettings) -> Evidence:
    """The gate's decision on `hits` (no hits: refused)."""
    best = max((h.score for h in hits), default=-1.0)
    weak = best < grounding.gate_threshold
    floor = (
        max(grounding.weak_extractive_threshold, grounding.extractive_threshold) if weak else None
    )
    return Evidence(refused=best < grounding.min_relevance, weak=weak, quote_floor=floor)
