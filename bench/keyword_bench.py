"""Retrieval latency while the keyword index rebuilds after a write, against idle, in one run.

    python bench/keyword_bench.py [--chunks 100000] [--uploads 3] [--idle-queries 300]

A collection of --chunks synthetic chunks (words drawn from the example documents, random unit
vectors, one in ten stamped `hr`) is written straight to Chroma, so the figures are the index's
and not the embedder's. A reader thread then calls `HybridRetriever.retrieve` in a closed loop
(the real embedder embeds each query) as a reader with groups {it}: first idle, then across each
"upload" (a 20-chunk document upserted and the revision bumped, as the pipeline does) until the
background rebuild has published the new snapshot, then idle again; idle and upload phases
alternate, so both see the same machine load. Target: p99 during uploads <= 2 x idle p99.
Also reported: the first (full) build, which a request used to wait for after every write, and
each incremental rebuild. Writes bench/results/keyword.{json,md}.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from benchlib import ROOT, percentile, write_results

from rag_core.access import Access
from rag_core.embedding import load_embedder
from rag_core.settings import load_settings
from rag_core.store import Chunk, ChunkStore, open_client
from rag_server.grounding import tokens
from rag_server.retrieval import Filters, HybridRetriever, KeywordIndex

READER = Filters(access=Access(frozenset({"it"})))
QUERIES = [
    "How many days of paid annual leave do employees get?",
    "Which VPN is used for remote access?",
    "per diem meal allowance travel",
    "office opening hours on Friday",
    "expense claims receipts deadline",
]


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for path in (ROOT / "examples" / "docs").iterdir():
        if path.suffix in {".md", ".txt"}:
            words |= {t for t in tokens(path.read_text()) if t.isalpha() and len(t) > 2}
    return sorted(words)


def _chunk(n: int, document: int, rng: random.Random, vocab: list[str], now: str) -> Chunk:
    text = " ".join(rng.choice(vocab) for _ in range(rng.randint(60, 140))) + "."
    return Chunk(
        chunk_id=f"c{n}",
        document_id=f"doc{document}",
        source=f"doc{document}.md",
        title=f"Document {document}",
        text=text,
        start=0,
        end=len(text),
        chunk_index=n % 20,
        chunk_count=20,
        content_hash=f"h{document}",
        pipeline="bench",
        ingested_at=now,
        groups=("hr",) if document % 10 == 0 else (),
    )


def _write(store: ChunkStore, chunks: list[Chunk], rng: np.random.Generator, dim: int) -> None:
    vectors = rng.standard_normal((len(chunks), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.upsert(chunks, vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--idle-queries", type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="keyword-bench-"))
    settings = load_settings(data_dir=tmp / "data")
    embedder = load_embedder(settings.embedder, tmp / "models")
    store = ChunkStore(open_client(settings), "bench", embedder.identity)
    vocab, rng, vec_rng = _vocabulary(), random.Random(7), np.random.default_rng(7)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    began = time.perf_counter()
    batch = []
    for n in range(args.chunks):
        batch.append(_chunk(n, n // 20, rng, vocab, now))
        if len(batch) == 5000:
            _write(store, batch, vec_rng, embedder.identity.dim)
            batch = []
    if batch:
        _write(store, batch, vec_rng, embedder.identity.dim)
    store.bump_revision()
    written_s = time.perf_counter() - began
    print(f"{args.chunks} chunks written in {written_s:.0f}s", flush=True)

    keyword = KeywordIndex(store)
    began = time.perf_counter()
    keyword.refresh()
    full_build_s = time.perf_counter() - began
    print(f"first (full) build: {full_build_s:.1f}s", flush=True)
    retriever = HybridRetriever(store, embedder, keyword)

    def query(n: int) -> float:
        began = time.perf_counter()
        retriever.retrieve(QUERIES[n % len(QUERIES)], 5, READER)
        return (time.perf_counter() - began) * 1000

    for n in range(10):  # warm-up
        query(n)
    idle: list[float] = []
    during: list[float] = []
    rebuilds: list[float] = []
    for upload in range(args.uploads + 1):
        idle += [query(n) for n in range(args.idle_queries // (args.uploads + 1))]
        if upload == args.uploads:
            break
        document = args.chunks // 20 + upload
        fresh = [
            _chunk(args.chunks + upload * 20 + i, document, rng, vocab, now) for i in range(20)
        ]
        before = keyword.current()
        began = time.perf_counter()

        def upload_document(chunks: list[Chunk] = fresh) -> None:
            store.bump_revision()  # as the pipeline does, around its writes
            _write(store, chunks, vec_rng, embedder.identity.dim)
            store.bump_revision()

        writer = threading.Thread(target=upload_document)
        writer.start()
        n = 0
        # Query until the write is done and its snapshot published (a reader notices the new
        # revision on its next query, which starts the rebuild).
        while writer.is_alive() or keyword.current().revision != store.revision():
            during.append(query(n))
            n += 1
        writer.join()
        rebuilds.append(time.perf_counter() - began)
        assert keyword.current() is not before
        print(
            f"upload {upload + 1}: {n} queries during the rebuild, {rebuilds[-1]:.1f}s", flush=True
        )

    p99_idle, p99_during = percentile(idle, 99), percentile(during, 99)
    ratio = p99_during / p99_idle
    data = {
        "chunks": args.chunks,
        "write_s": round(written_s, 1),
        "full_build_s": round(full_build_s, 2),
        "rebuild_s": [round(r, 2) for r in rebuilds],
        "idle_ms": {"n": len(idle), "p50": percentile(idle, 50), "p99": p99_idle},
        "during_upload_ms": {"n": len(during), "p50": percentile(during, 50), "p99": p99_during},
        "p99_ratio": round(ratio, 2),
        "target": "p99 during uploads <= 2 x idle p99",
        "met": ratio <= 2.0,
    }
    markdown = f"""# Retrieval latency while the keyword index rebuilds

`python bench/keyword_bench.py --chunks {args.chunks} --uploads {args.uploads}`: {args.chunks}
synthetic chunks, a reader with groups {{it}} calling `HybridRetriever.retrieve` in a closed loop
(real embedder for the query), idle and upload phases alternating in one run.

| | queries | p50 ms | p99 ms |
|---|---:|---:|---:|
| idle | {len(idle)} | {percentile(idle, 50):.1f} | {p99_idle:.1f} |
| during an upload, until the new snapshot is published | {len(during)} | {percentile(during, 50):.1f} | {p99_during:.1f} |

p99 ratio (upload / idle): **{ratio:.2f}** (target <= 2: {"met" if ratio <= 2 else "NOT met"}).

First (full) build: {full_build_s:.1f} s: what the first request after every write used to wait
for, when the index was rebuilt on the request path. Rebuild after each 20-chunk upload, write
included, in the background: {", ".join(f"{r:.1f}" for r in rebuilds)} s.
"""
    write_results("keyword", data, markdown)


if __name__ == "__main__":
    main()
