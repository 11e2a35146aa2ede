"""Query-time batching, before and after, in one run: the time `/v1/ask` spends embedding a
question's candidate sentences and scoring them with the answer model.

    .venv/bin/python bench/batching_bench.py [--corpus handbook] [--questions 40] [--data DIR]

Before: every candidate in one batch padded to the longest (the embedder's `batch_size`, 64; the
answer model's 32). Now: the embedder's batches of similar length with at most
`rag_core.batching.TOKENS_PER_BATCH` padded tokens, and the answer model one pair a run, pairs
side by side on the cores (also timed against one after another, each on every core). The
two are interleaved question by question (A B A B) on the same candidates, which the service finds
for the corpus's questions (eval/corpora.json; ingested into --data, a no-op when it holds them).
Also reports how far the batched answer-model logits are from each pair's own. Writes
bench/results/batching.{json,md}. About 4 minutes on 2 cores, the handbook's ingest included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import ROOT, NoModel, timed, write_results
from grounding_suite import candidates, load_corpora

from rag_core.access import UNRESTRICTED
from rag_core.settings import usable_cores


class BatchedScorer:
    """The answer model as it ran before: up to 32 pairs a run, padded to the longest."""

    def __init__(self, scorer: Any, batch: int = 32) -> None:
        from tokenizers import Tokenizer

        self.session = scorer._session
        self.names = scorer._names
        self.tokenizer = Tokenizer.from_str(scorer._tokenizer.to_str())
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.batch = batch

    def logits(self, question: str, sentences: list[str]) -> list[float]:
        out: list[float] = []
        for lo in range(0, len(sentences), self.batch):
            encodings = self.tokenizer.encode_batch(
                [(question, s) for s in sentences[lo : lo + self.batch]]
            )
            feeds = {
                "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
            }
            result = self.session.run(None, {k: v for k, v in feeds.items() if k in self.names})
            out.extend(np.asarray(result[0], dtype=np.float64).reshape(-1).tolist())
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="handbook")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--data", type=Path, help="keep the store here (default: temporary)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    from ingest.build import build_pipeline
    from rag_core.embedding import load_embedder
    from rag_core.settings import load_settings
    from rag_server.answer_scorer import AnswerScorer
    from rag_server.rag import assemble
    from rag_server.retrieval import Filters

    spec = load_corpora([args.corpus])[args.corpus]
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch)
        settings = load_settings(data_dir=data, collection=f"eval-{args.corpus}")
        embedder = load_embedder(settings.embedder, settings.models_home)
        build_pipeline(settings, embedder).run([ROOT / p for p in spec["paths"]])
        rag = assemble(settings, embedder, NoModel())
        scorer = AnswerScorer.load()
        serial = AnswerScorer.load(workers=1)  # one pair at a time, each on every core
        before = BatchedScorer(serial)
        items = [json.loads(x) for x in (ROOT / spec["questions"]).read_text().splitlines() if x]
        rows: list[dict[str, float]] = []
        drift: list[float] = []
        for item in items[: args.questions]:
            corpus = rag.catalog.get()
            snapshot = corpus.keyword.current()
            question = rag.service.read(item["question"], snapshot, UNRESTRICTED)
            hits = corpus.retriever.retrieve(
                question, settings.retrieval.top_k, Filters(), {}, snapshot
            )
            sentences = candidates(question, hits)
            if not sentences:
                continue
            vectors_a, embed_a = timed(
                lambda s=sentences: embedder.encoder.encode(s, embedder.batch_size)
            )
            vectors_b, embed_b = timed(lambda s=sentences: embedder.embed_texts(s))
            logits_a, score_a = timed(lambda q=question, s=sentences: before.logits(q, s))
            logits_s, score_s = timed(lambda q=question, s=sentences: serial.logits(q, s))
            logits_b, score_b = timed(lambda q=question, s=sentences: scorer.logits(q, s))
            assert np.allclose(vectors_a, vectors_b, atol=1e-5), "the vectors must not change"
            assert np.allclose(logits_s, logits_b, atol=1e-5), "side by side must score the same"
            drift.extend(abs(a - b) for a, b in zip(logits_a, logits_b, strict=True))
            rows.append(
                {
                    "sentences": len(sentences),
                    "embed_before": embed_a,
                    "embed_now": embed_b,
                    "score_before": score_a,
                    "score_serial": score_s,
                    "score_now": score_b,
                }
            )
        print(f"{len(rows)} questions timed", file=sys.stderr)
    result = summary(rows, drift, args.corpus)
    write_results("batching", result, markdown(result), args.out)


def summary(rows: list[dict[str, float]], drift: list[float], corpus: str) -> dict[str, Any]:
    def p50_ms(key: str) -> float:
        return round(1000 * statistics.median(r[key] for r in rows), 1)

    both_before = statistics.median(r["embed_before"] + r["score_before"] for r in rows)
    both_now = statistics.median(r["embed_now"] + r["score_now"] for r in rows)
    return {
        "corpus": corpus,
        "questions": len(rows),
        "candidates_p50": statistics.median(r["sentences"] for r in rows),
        "p50_ms": {
            k: p50_ms(k)
            for k in ("embed_before", "embed_now", "score_before", "score_serial", "score_now")
        },
        "ratio_now_to_before": {
            "embed": round(p50_ms("embed_now") / p50_ms("embed_before"), 2),
            "answer_model": round(p50_ms("score_now") / p50_ms("score_before"), 2),
            "both": round(both_now / both_before, 2),
        },
        "pairs_side_by_side": {
            "workers": usable_cores(),
            "ratio_to_one_after_another": round(p50_ms("score_now") / p50_ms("score_serial"), 2),
        },
        "batched_logit_drift": {
            "median": round(statistics.median(drift), 4),
            "p99": round(float(np.percentile(drift, 99)), 4),
            "max": round(max(drift), 4),
        },
    }


def markdown(result: dict[str, Any]) -> str:
    p50, ratio, drift, side = (
        result["p50_ms"],
        result["ratio_now_to_before"],
        result["batched_logit_drift"],
        result["pairs_side_by_side"],
    )
    return (
        f"# Query-time batching ({result['corpus']}, {result['questions']} questions, "
        f"{result['candidates_p50']} candidates at the median)\n\n"
        "| step | before (one padded batch) p50 ms | now p50 ms | now / before |\n|---|---|---|---|\n"
        f"| embed the candidates | {p50['embed_before']} | {p50['embed_now']} | {ratio['embed']} |\n"
        f"| answer model | {p50['score_before']} | {p50['score_now']} | {ratio['answer_model']} |\n"
        f"| both | | | {ratio['both']} |\n\n"
        f"The answer model's pairs side by side ({side['workers']} at a time, one core each, the "
        f"default) against one after another on every core: {p50['score_now']} ms against "
        f"{p50['score_serial']} ms at the median, {side['ratio_to_one_after_another']} of the "
        "time, with the same logits.\n\n"
        f"Batched answer-model logits differ from each pair's own by {drift['median']} at the "
        f"median, {drift['p99']} at the 99th percentile, {drift['max']} at most.\n"
    )


if __name__ == "__main__":
    main()
