"""Ingestion throughput: the whole pipeline against the embedder alone, on the same chunks, one run.

    python bench/ingest_bench.py [CORPUS_DIR] [--out bench/results]

The corpus defaults to the Debian Policy Manual (Debian package `debian-policy`), falling back to
the bundled examples. Writes bench/results/ingest.json and ingest.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_POLICY = Path("/usr/share/doc/debian-policy/policy.html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    corpus: Path = args.corpus or (
        DEBIAN_POLICY if DEBIAN_POLICY.is_dir() else ROOT / "examples/docs"
    )

    from sentence_transformers import SentenceTransformer

    from ingest.build import build_pipeline
    from ingest.chunking import Span
    from ingest.loaders import LoadError, load
    from ingest.pipeline import discover
    from rag_server.embedding import load_embedder, packaged_model_path
    from rag_server.settings import load_settings

    def _spans(path: Path) -> list[Span]:
        try:
            return chunker.split(load(path, path.read_bytes()))
        except LoadError:
            return []

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        embedder = load_embedder(settings.embedder)
        sources, _ = discover([corpus])
        chunker = build_pipeline(settings, embedder).chunker
        source_bytes = sum(s.path.stat().st_size for s in sources)
        embedder.embed_texts(["warm-up passage"] * 8)

        # Baseline: sentence-transformers itself, one encode call over exactly the same chunks,
        # timed before and after the pipeline (the mean damps drift on a shared machine).
        raw = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True)
        raw.encode(["warm-up passage"] * 8)
        texts = [s.text for f in sources for s in _spans(f.path)]

        def time_raw() -> float:
            began = time.perf_counter()
            raw.encode(texts, batch_size=settings.embedder.batch_size, normalize_embeddings=True)
            return time.perf_counter() - began

        before = time_raw()
        pipeline = build_pipeline(settings, embedder)
        report = pipeline.run([corpus])
        pipeline_s = report.seconds
        assert report.chunks == len(texts) == pipeline.store.count(), "baseline saw other chunks"
        embed_s = (before + time_raw()) / 2

    chunks = len(texts)
    result = {
        "corpus": str(corpus),
        "files": len(sources),
        "failed": len(report.failed),
        "source_mb": round(source_bytes / 1e6, 3),
        "chunks": chunks,
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_chunks_per_s": round(chunks / pipeline_s, 1),
        "pipeline_mb_per_s": round(source_bytes / 1e6 / pipeline_s, 3),
        "embedder_alone_seconds": round(embed_s, 2),
        "embedder_alone_chunks_per_s": round(chunks / embed_s, 1),
        "ratio_pipeline_to_embedder": round(embed_s / pipeline_s, 3),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "python": sys.version.split()[0],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    table = (
        "| measure | pipeline | embedder alone |\n|---|---|---|\n"
        f"| chunks/s | {result['pipeline_chunks_per_s']} | {result['embedder_alone_chunks_per_s']} |\n"
        f"| seconds | {result['pipeline_seconds']} | {result['embedder_alone_seconds']} |\n"
        f"| MB of source/s | {result['pipeline_mb_per_s']} | |\n\n"
        f"Pipeline / embedder alone: **{result['ratio_pipeline_to_embedder']}** "
        f"({chunks} chunks from {len(sources)} files, {result['source_mb']} MB, `{corpus}`)\n"
    )
    (args.out / "ingest.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
