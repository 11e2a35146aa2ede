"""Which sentence an extractive answer quotes: the service's ranker against the generator's own
likelihood, on the answerable questions of a question set.

    RAG_DATA_DIR=... RAG_COLLECTION=... python bench/rerank.py eval/debian-policy.jsonl

Rankers: the service's (embedding cosine plus IDF-weighted question-word overlap), and query
likelihood from the GGUF model (mean log P(question | "Passage: <sentence>"), as in UPR, Sachan et
al. 2022) over the service's best 6 distinct sentences. Counts the questions whose first quote
holds a gold answer, and whose whole extractive answer (best quote plus runner-up) does. Writes
bench/results/rerank.md. About 5 minutes with the default model.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchlib import load_questions

ROOT = Path(__file__).resolve().parent.parent
TOP = 6
HEADER = "Passage: {p}\nQuestion:"


def likelihoods(llm: Any, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Mean log-probability of each target after its context, one decode per pair, with logits
    only where they predict a target token."""
    import llama_cpp
    import numpy as np

    ctx, n_vocab = llm._ctx, llm.n_vocab()
    batch = llama_cpp.llama_batch_init(llm.n_batch, 0, 1)
    out = []
    try:
        for context, target in pairs:
            head = llm.tokenize(context.encode(), add_bos=True, special=False)
            ids = (head + llm.tokenize((" " + target).encode(), add_bos=False))[: llm.n_batch]
            first = len(head) - 1
            ctx.kv_cache_seq_rm(0, 0, -1)
            batch.n_tokens = len(ids)
            for i, token in enumerate(ids):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = first <= i < len(ids) - 1
            assert llama_cpp.llama_decode(ctx.ctx, batch) == 0
            total = 0.0
            for i in range(first, len(ids) - 1):
                row = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(ctx.ctx, i), shape=(n_vocab,)
                )
                top = float(row.max())
                total += float(row[ids[i + 1]]) - top - math.log(float(np.exp(row - top).sum()))
            out.append(total / max(1, len(ids) - 1 - first))
    finally:
        llama_cpp.llama_batch_free(batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rerank.md")
    args = parser.parse_args()

    from rag_core.settings import load_settings
    from rag_server.evaluation import is_correct
    from rag_server.grounding import extractive
    from rag_server.rag import build_rag

    settings = load_settings()
    rag = build_rag(settings)
    service, corpus = rag.service, rag.catalog.get()
    llm = rag.generator.llm  # type: ignore[attr-defined]
    spent: list[float] = []

    def lm_ranker(base: Callable[[str, list[str]], list[float]]) -> Any:
        def rank(question: str, texts: list[str]) -> list[float]:
            scores = base(question, texts)
            order = sorted(range(len(texts)), key=lambda k: -scores[k])
            top = list({texts[k]: k for k in reversed(order)}.values())[::-1][:TOP]
            began = time.perf_counter()
            lm = likelihoods(llm, [(HEADER.format(p=texts[k]), question) for k in top])
            spent.append(time.perf_counter() - began)
            ranked = [s - 1e3 for s in scores]  # outside the top: never chosen
            for k, value in zip(top, lm, strict=True):
                ranked[k] = value
            return ranked

        return rank

    questions = load_questions(args.qa)
    counts = {"service": [0, 0], "model likelihood": [0, 0]}
    for item in questions:
        hits = corpus.retriever.retrieve(item["question"], settings.retrieval.top_k)
        relevance = [h.score for h in hits]
        base = service.similarity_scorer(item["question"], corpus.keyword.current())
        for name, ranker in (("service", base), ("model likelihood", lm_ranker(base))):
            got = extractive(item["question"], hits, relevance, service.policy, score=ranker)
            if got.citations:
                counts[name][0] += is_correct(got.citations[0].text, item["answers"])
                counts[name][1] += is_correct(got.answer, item["answers"])
    n = len(questions)
    lines = [
        f"{n} answerable questions of `{args.qa.name}`; model likelihood over the service's best "
        f"{TOP} sentences, median {sorted(spent)[len(spent) // 2]:.2f} s per question.\n",
        "| ranker | first quote holds the answer | answer (with runner-up) holds it |",
        "|---|---|---|",
        *(f"| {name} | {a}/{n} | {b}/{n} |" for name, (a, b) in counts.items()),
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
