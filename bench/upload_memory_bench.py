"""Server memory under replacing uploads: one document uploaded again and again with new text,
as an intranet page republished every hour, through a real `rag-server` on loopback.

Each round uploads the document (`POST /v1/documents`, replacing the previous version) and
searches once; the server's resident set (VmRSS) is read every `--every` rounds. The figure is
the growth per upload after the first `--every` rounds (which load the ONNX arenas and indexes),
against the growth per search over as many requests (2 x rounds searches) alone, measured first
in the same run.

    python bench/upload_memory_bench.py [--rounds 100] [--every 20] [--port 8033]

Writes bench/results/upload_memory.{json,md}. About 8 minutes here for 100 rounds.
"""

from __future__ import annotations

import argparse
import random
import tempfile

from benchlib import ROOT, rss_mb, running_server, write_results

WORDS = [
    w for p in sorted((ROOT / "examples" / "docs").rglob("*.md")) for w in p.read_text().split()
]


def document(rng: random.Random) -> bytes:
    """About 30 KB of Markdown, 60 paragraphs of the examples' words, new at every call."""
    paragraphs = (" ".join(rng.choices(WORDS, k=80)) + "." for _ in range(60))
    return ("# Weekly notice\n\n" + "\n\n".join(paragraphs) + "\n").encode()


def growth(samples: list[tuple[int, float]]) -> float:
    """MB per round between the first and the last sample."""
    (first_n, first), (last_n, last) = samples[0], samples[-1]
    return round((last - first) / max(1, last_n - first_n), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--port", type=int, default=8033)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as data:
        # One key sends every request: lift the per-key rate limit (120 a minute by default).
        env = {"RAG_DATA_DIR": data, "RAG_LIMITS__REQUESTS_PER_MINUTE": "1000000"}
        with running_server(env, args.port, role="admin") as server, server.client() as http:
            assert server.process is not None
            pid = server.process.pid

            def search() -> None:
                r = http.post("/v1/search", json={"query": "parental leave weeks", "top_k": 5})
                r.raise_for_status()

            def upload() -> None:
                files = {"file": ("notice.md", document(rng), "text/markdown")}
                http.post("/v1/documents", files=files).raise_for_status()

            upload()  # the store holds one document while the searches are measured
            searches: list[tuple[int, float]] = []
            uploads: list[tuple[int, float]] = []
            for n in range(1, 2 * args.rounds + 1):
                search()
                if n % args.every == 0:
                    searches.append((n, rss_mb(pid)))
            for n in range(1, args.rounds + 1):
                upload()
                search()
                if n % args.every == 0:
                    uploads.append((n, rss_mb(pid)))
    result = {
        "rounds": args.rounds,
        "searches_rss_mb": searches,
        "uploads_rss_mb": uploads,
        "mb_per_search": growth(searches),
        "mb_per_upload": growth(uploads),
    }
    rows = "\n".join(f"| {n} | {mb} |" for n, mb in uploads)
    markdown = (
        "# Server memory under replacing uploads\n\n"
        f"`python bench/upload_memory_bench.py --rounds {args.rounds} --every {args.every}`\n\n"
        "| uploads (each also searched once) | server RSS MB |\n|---|---|\n"
        f"{rows}\n\n"
        f"Growth after the first {args.every} uploads: {result['mb_per_upload']} MB per upload; "
        f"over {2 * args.rounds} searches alone, before them: {result['mb_per_search']} MB per "
        "search.\n"
    )
    write_results("upload_memory", result, markdown)


if __name__ == "__main__":
    main()
