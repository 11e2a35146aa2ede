"""Retrieval hit@k on a question set: dense alone, BM25 alone, and each fusion, in one run.

    RAG_DATA_DIR=... RAG_COLLECTION=... python bench/fusion.py eval/debian-policy.jsonl

Writes bench/results/fusion.md (answerable questions only, by split).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from benchlib import hits_at, load_questions

ROOT = Path(__file__).resolve().parent.parent
KS = (1, 3, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fusion.md")
    args = parser.parse_args()

    from rag_core.embedding import load_embedder
    from rag_core.settings import load_settings
    from rag_core.store import ChunkStore, open_client
    from rag_server.retrieval import Filters, HybridRetriever, KeywordIndex

    settings = load_settings()
    embedder = load_embedder(settings.embedder, settings.models_home)
    store = ChunkStore(open_client(settings), settings.collection, embedder.identity)
    keyword = KeywordIndex(store)
    questions = load_questions(args.qa)
    splits = sorted({q.get("split", "all") for q in questions})

    def dense(q: str, k: int) -> list[str]:
        return [h.chunk.source for h in store.query(embedder.embed_query(q), k)]

    def sparse(q: str, k: int) -> list[str]:
        return [c.source for c, _ in keyword.search(q, k, Filters())]

    def fused(retriever: HybridRetriever) -> Callable[[str, int], list[str]]:
        return lambda q, k: [h.chunk.source for h in retriever.retrieve(q, k)]

    methods: dict[str, Callable[[str, int], list[str]]] = {
        "dense only": dense,
        "BM25 only": sparse,
        "RRF (default)": fused(HybridRetriever(store, embedder, keyword, "rrf")),
        "weighted 0.5": fused(
            HybridRetriever(store, embedder, keyword, "weighted", dense_weight=0.5)
        ),
        "weighted 0.7": fused(
            HybridRetriever(store, embedder, keyword, "weighted", dense_weight=0.7)
        ),
    }
    header = "| method | " + " | ".join(f"{s} hit@{k}" for s in splits for k in KS) + " |"
    lines = [header, "|" + "---|" * (1 + len(splits) * len(KS))]
    for name, method in methods.items():
        cells = []
        for split in splits:
            subset = [q for q in questions if q.get("split", "all") == split]
            for k in KS:
                cells.append(f"{hits_at(method, subset, k)}/{len(subset)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
