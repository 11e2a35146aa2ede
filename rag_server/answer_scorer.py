"""The answer scorer: a small cross-encoder that reads the question and one source sentence together
and gives the probability that the sentence answers the question.

Passage cosine and word overlap tell "is about the question" apart from "is not", but not "answers
it" from "is about it", and a paraphrased question scores low against the sentence that answers
it; thresholds on them fitted to one corpus did not hold on others. This model was trained for
exactly that distinction on SQuAD 2.0's train split, adversarial unanswerables included
(training/answer_scorer/), and ships inside the package as ONNX, so it loads offline, once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rag_core.embedding_onnx import ort_session
from rag_core.errors import ModelLoadError
from rag_core.settings import usable_cores

PACKAGED = Path(__file__).resolve().parent / "models" / "answer_scorer"
MAX_TOKENS = 128  # the training length: question and sentence together, longest truncated first


class AnswerScorer:
    """Scores (question, sentence) pairs. Thread-safe: the tokenizer is configured once, here,
    and only read afterwards; ONNX Runtime sessions may run concurrently.

    With `workers` > 1 a question's pairs run that many at a time, each on one core. A pair is a
    few dozen tokens: split across cores, each of its small products waits for the threads to
    meet; pairs side by side keep every core busy (0.6 of the time for a question's candidates
    on 2 cores, bench/batching_bench.py). Each pair still runs alone, so its score is the same."""

    def __init__(self, session: Any, tokenizer: Any, identity: str, workers: int = 1) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._names = {i.name for i in session.get_inputs()}
        self.identity = identity
        self._lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="answer-scorer") if workers > 1 else None
        )

    @classmethod
    def load(cls, model_dir: Path | None = None, workers: int | None = None) -> AnswerScorer:
        """Load the packaged scorer (or another directory with model.onnx and tokenizer.json)."""
        directory = model_dir or PACKAGED
        return cls.from_files(
            directory / "model.onnx", directory / "tokenizer.json", _card_name(directory), workers
        )

    @classmethod
    def from_files(
        cls, onnx_file: Path, tokenizer_file: Path, name: str, workers: int | None = None
    ) -> AnswerScorer:
        """A scorer from an ONNX file and a tokenizer.json anywhere: the server's packaged model,
        and each variant `training/answer_scorer/export.py` validates, scored the same way.
        `workers`: pairs run at once, one core each (default: one per usable core); with 1, pairs
        run one after another, each on every core."""
        from tokenizers import Tokenizer

        workers = workers or usable_cores()
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=MAX_TOKENS, strategy="longest_first")
            tokenizer.no_padding()  # each pair runs alone (see `logits`)
            session = ort_session(onnx_file, threads=1 if workers > 1 else None)
        except Exception as exc:  # onnxruntime and tokenizers raise their own exception types
            raise ModelLoadError(f"cannot load the answer scorer {onnx_file}: {exc}") from exc
        digest = hashlib.sha256(onnx_file.read_bytes()).hexdigest()[:12]
        return cls(session, tokenizer, f"{name} ({digest})", workers)

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        """P(sentence answers question) for each sentence, in order, by this model alone."""
        return [1.0 / (1.0 + float(np.exp(-x))) for x in self.logits(question, sentences)]

    def logits(self, question: str, sentences: Sequence[str]) -> list[float]:
        """The model's raw output for each (question, sentence) pair, in order.

        Each pair runs alone, unpadded. The model is dynamically quantized: every product's
        activations share one int8 scale per run, taken from the whole input tensor, so in a
        batch a sentence's score moved with whatever else was retrieved beside it (by 0.08 logit
        at the median, up to 1.7, padding included). Alone, a pair scores the same in every
        request. It is also faster than one padded batch: p50 0.60 s for a question's candidates
        against 1.17 s batched (2-core AVX2 machine, bench/results/batching.md)."""
        if not sentences:
            return []
        with self._lock:  # encode_batch borrows the tokenizer; keep one borrower at a time
            encodings = self._tokenizer.encode_batch([(question, s) for s in sentences])
        if self._pool is None or len(encodings) == 1:
            return [self._run(encoding) for encoding in encodings]
        return list(self._pool.map(self._run, encodings))  # in input order

    def _run(self, encoding: Any) -> float:
        """One pair's logit, the pair alone in its run."""
        feeds = {
            "input_ids": np.asarray([encoding.ids], dtype=np.int64),
            "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
        }
        logits = self._session.run(None, {k: v for k, v in feeds.items() if k in self._names})
        return float(np.asarray(logits[0], dtype=np.float64).reshape(-1)[-1])


def _card_name(directory: Path) -> str:
    """The scorer's name from its card, so readiness and logs say which model answers."""
    try:
        card = json.loads((directory / "card.json").read_text())
        return str(card.get("name", directory.name))
    except (OSError, ValueError):
        return directory.name
