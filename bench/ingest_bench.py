"""Ingestion and embedder backends: throughput of the whole pipeline and of the embedder alone, per
backend (torch, onnx, onnx int8, openvino), and each backend's retrieval quality, in one run.

    python bench/ingest_bench.py [CORPUS_DIR] [--variants torch,onnx,onnx-int8,openvino]

For every variant, in the same run and interleaved (rounds A B C D A B C D): the embedder alone
encodes exactly the chunks the pipeline makes (one `embed_texts` call), and right after it the
whole pipeline ingests the corpus into a fresh temporary collection. With the Debian Policy corpus, hit@5 of the
served retrieval (RRF) and of dense retrieval alone is measured on each variant's own collection
(dev split, answerable questions), and for int8 queries against the torch-built collection too.
Writes bench/results/ingest.{json,md}. About 20 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    DEBIAN_POLICY,
    QA,
    ROOT,
    default_corpus,
    hits_at,
    load_questions,
    write_results,
)

VARIANTS = ("torch", "onnx", "onnx-int8", "openvino")


def _embedder_settings(base: Any, variant: str) -> Any:
    backend, _, quantize = variant.partition("-")
    return base.embedder.model_copy(update={"backend": backend, "quantize": quantize or "none"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=2, help="embedder-alone rounds per variant")
    parser.add_argument("--qa", type=Path, default=QA)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    corpus: Path = args.corpus or default_corpus()
    variants = [v for v in args.variants.split(",") if v]
    if "openvino" in variants and importlib.util.find_spec("openvino") is None:
        print("openvino is not installed (pip install 'rag-server[openvino]'): skipped")
        variants.remove("openvino")

    from ingest.build import build_pipeline
    from ingest.loaders import LoadError, load
    from ingest.pipeline import discover
    from rag_core.embedding import Embedder, load_embedder
    from rag_core.settings import load_settings
    from rag_core.store import ChunkStore
    from rag_server.retrieval import HybridRetriever, KeywordIndex

    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings(data_dir=Path(tmp))
        embedders: dict[str, Embedder] = {}
        load_s: dict[str, float] = {}
        for variant in variants:
            began = time.perf_counter()  # includes the one-time ONNX export / quantization
            embedders[variant] = load_embedder(_embedder_settings(base, variant), base.models_home)
            load_s[variant] = time.perf_counter() - began
            embedders[variant].embed_texts(["warm-up passage"] * 8)

        sources, _ = discover([corpus])
        source_bytes = sum(s.path.stat().st_size for s in sources)
        chunker = build_pipeline(base, embedders[variants[0]]).chunker
        texts: list[str] = []
        for source in sources:
            with contextlib.suppress(LoadError):  # the pipeline reports such files; skip alike
                document = load(source.path, source.path.read_bytes())
                texts += [span.text for span in chunker.split(document)]

        # Rounds A B C D A B C D, and within each variant the embedder alone then the pipeline
        # back to back, so drift in load on a shared machine hits both sides of a ratio alike.
        alone: dict[str, list[float]] = {v: [] for v in variants}
        piped: dict[str, list[float]] = {v: [] for v in variants}
        stores: dict[str, ChunkStore] = {}
        for round_no in range(args.rounds):
            for variant in variants:
                began = time.perf_counter()
                embedders[variant].embed_texts(texts)
                alone[variant].append(time.perf_counter() - began)
                settings = base.model_copy(update={"collection": f"bench-{variant}-{round_no}"})
                pipeline = build_pipeline(settings, embedders[variant])
                report = pipeline.run([corpus])
                assert report.chunks == len(texts) == pipeline.store.count(), (
                    "pipeline saw other chunks"
                )
                piped[variant].append(report.seconds)
                stores[variant] = pipeline.store

        quality: dict[str, dict[str, Any]] = {}
        if corpus == DEBIAN_POLICY and args.qa.is_file():
            dev = load_questions(args.qa, args.split)
            answerable = load_questions(args.qa)
            pairs = [(v, v) for v in variants]
            if "onnx-int8" in variants and "torch" in variants:
                pairs.append(("torch", "onnx-int8"))  # int8 queries on a torch-built store
            for store_variant, query_variant in pairs:
                store, embedder = stores[store_variant], embedders[query_variant]
                hybrid = HybridRetriever(store, embedder, KeywordIndex(store))

                def rrf(q: str, k: int, r: HybridRetriever = hybrid) -> list[str]:
                    return [h.chunk.source for h in r.retrieve(q, k)]

                def dense(
                    q: str, k: int, s: ChunkStore = store, e: Embedder = embedder
                ) -> list[str]:
                    return [h.chunk.source for h in s.query(e.embed_query(q), k)]

                name = (
                    query_variant if store_variant == query_variant else "onnx-int8 on torch store"
                )
                quality[name] = {
                    f"{args.split}_rrf_hit5": hits_at(rrf, dev, 5),
                    f"{args.split}_dense_hit5": hits_at(dense, dev, 5),
                    "all_rrf_hit5": hits_at(rrf, answerable, 5),
                    "all_dense_hit5": hits_at(dense, answerable, 5),
                    f"{args.split}_n": len(dev),
                    "all_n": len(answerable),
                }
            probe = texts[:256]
            reference = embedders[variants[0]].embed_texts(probe)
            for variant in variants:
                cosine = (embedders[variant].embed_texts(probe) * reference).sum(axis=1)
                quality.setdefault(variant, {})["mean_cosine_to_" + variants[0]] = round(
                    float(cosine.mean()), 4
                )

    mb = source_bytes / 1e6
    rows: dict[str, dict[str, Any]] = {}
    for variant in variants:
        embed_s = statistics.mean(alone[variant])
        pipe_s = statistics.mean(piped[variant])
        rows[variant] = {
            "load_seconds_incl_export": round(load_s[variant], 1),
            "embedder_alone_seconds": [round(x, 2) for x in alone[variant]],
            "embedder_alone_chunks_per_s": round(len(texts) / embed_s, 1),
            "embedder_alone_mb_per_s": round(mb / embed_s, 4),
            "pipeline_seconds": [round(x, 2) for x in piped[variant]],
            "pipeline_chunks_per_s": round(len(texts) / pipe_s, 1),
            "pipeline_mb_per_s": round(mb / pipe_s, 4),
            "pipeline_to_embedder_alone": round(embed_s / pipe_s, 3),
        }
        if "torch" in piped:
            rows[variant]["pipeline_speedup_vs_torch"] = round(
                statistics.mean(piped["torch"]) / pipe_s, 2
            )
        rows[variant].update(quality.get(variant, {}))
    result = {
        "corpus": str(corpus),
        "files": len(sources),
        "source_mb": round(mb, 3),
        "chunks": len(texts),
        "variants": rows,
        "quality": quality,
        "note": "each round runs every variant: embedder alone, then the pipeline, back to back",
    }
    write_results("ingest", result, _markdown(result, args.split), args.out)


def _markdown(result: dict[str, Any], split: str) -> str:
    rows: dict[str, dict[str, Any]] = result["variants"]
    lines = [
        f"Corpus `{result['corpus']}`: {result['files']} files, {result['source_mb']} MB, "
        f"{result['chunks']} chunks.\n",
        "| backend | pipeline chunks/s | pipeline MB/s | embedder alone chunks/s | pipeline / "
        f"embedder | pipeline vs torch | hit@5 RRF ({split}) | hit@5 dense ({split}) | "
        "hit@5 RRF (all) | mean cosine to torch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        quality = result["quality"].get(variant, {})
        lines.append(
            f"| {variant} | {row['pipeline_chunks_per_s']} | {row['pipeline_mb_per_s']} | "
            f"{row['embedder_alone_chunks_per_s']} | {row['pipeline_to_embedder_alone']} | "
            f"{row.get('pipeline_speedup_vs_torch', '')} | "
            f"{_frac(quality, f'{split}_rrf_hit5', f'{split}_n')} | "
            f"{_frac(quality, f'{split}_dense_hit5', f'{split}_n')} | "
            f"{_frac(quality, 'all_rrf_hit5', 'all_n')} | "
            f"{quality.get('mean_cosine_to_torch', '')} |"
        )
    mixed = result["quality"].get("onnx-int8 on torch store")
    if mixed:
        lines.append(
            f"\nint8 queries on the torch-built collection: hit@5 RRF {split} "
            f"{_frac(mixed, f'{split}_rrf_hit5', f'{split}_n')}, all "
            f"{_frac(mixed, 'all_rrf_hit5', 'all_n')}."
        )
    return "\n".join(lines) + "\n"


def _frac(row: dict[str, Any], key: str, total: str) -> str:
    return f"{row[key]}/{row[total]}" if key in row else ""


if __name__ == "__main__":
    main()
