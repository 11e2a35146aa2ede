"""The query path through the real HTTP server (uvicorn on loopback), in one run:

- `/v1/search` latency p50/p95 at 1k, 10k and 100k chunks;
- `/v1/ask` time to the first answer text and total latency p50/p95 with the default model (which
  quotes), and with the model writing: time to first streamed token, and the
  model's speed inside the server against raw llama-cpp-python on the same GGUF, threads and
  prompts, interleaved question by question (A B A B); plus the effect of prompt-prefix reuse;
- the memory-bandwidth bound on generation (model bytes per token / measured copy bandwidth);
- server startup time and peak RSS, and the peak RSS of an ingest of the corpus.

    python bench/query_bench.py [--sizes 1000,10000,100000] [--api-key KEY]

The 1k-100k collections hold the real Debian Policy chunks, replicated with small variations
(a replica tag in the text and ids) and vectors derived from their real embeddings (plus Gaussian
noise, renormalised): embedding 100k chunks for real takes over an hour here, and search latency
depends on the index size, not on the text. `/v1/ask` uses the real, fully embedded corpus.
Writes bench/results/query.{json,md}. About 25 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import (
    BIN,
    QA,
    ROOT,
    api_key_arg,
    default_corpus,
    load_questions,
    percentile,
    running_server,
    write_results,
)

POLICY = "policy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--searches", type=int, default=100, help="timed searches per size")
    parser.add_argument("--asks", type=int, default=45, help="dev questions asked (max 45)")
    parser.add_argument("--data-dir", type=Path, help="keep the stores here (default: temporary)")
    parser.add_argument("--port", type=int, default=8031)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    api_key_arg(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        env = {"RAG_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
        result: dict[str, Any] = {"bandwidth": bandwidth()}
        result["ingest"] = ingest(default_corpus(), env)
        result["model"] = model_bound(result["bandwidth"], data_dir)
        questions = [q["question"] for q in load_questions(QA, answerable=None)]
        result["search"] = {}
        for size in sizes:
            replicate(data_dir, size)
            with running_server(
                {**env, "RAG_COLLECTION": f"n{size}"}, args.port, args.api_key
            ) as server:
                row = search_latency(server, questions, args.searches)
                row.update(startup_s=round(server.startup_s, 2), peak_rss_mb=server.peak_rss_mb())
                result["search"][str(size)] = row
            print(f"search at {size}: {row}")
        dev = [q["question"] for q in load_questions(QA, "dev", answerable=None)][: args.asks]
        with running_server({**env, "RAG_COLLECTION": POLICY}, args.port, args.api_key) as server:
            result["ask"] = ask_latency(server, dev, None)  # the defaults: a base model quotes
        writing = {**env, "RAG_COLLECTION": POLICY, "RAG_GROUNDING__ANSWER_MODE": "generate"}
        with running_server(writing, args.port, args.api_key) as server:
            result["ask_generate"] = ask_latency(server, dev, data_dir)
            result["server"] = {
                "startup_s": round(server.startup_s, 2),
                "peak_rss_mb_after_asks": server.peak_rss_mb(),
            }
    result["note"] = (
        "search collections: real Debian Policy chunks replicated with small variations, vectors "
        "= real embeddings + N(0, 0.02) noise, renormalised; ask: the real corpus"
    )
    write_results("query", result, markdown(result), args.out)


def bandwidth(mb: int = 512, repeats: int = 5) -> dict[str, float]:
    """Copy bandwidth (read + write bytes / s), one thread and two threads on halves."""
    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    out: dict[str, float] = {}
    for threads in (1, 2):
        parts = np.array_split(np.arange(len(src)), threads)
        bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts]
        best = float("inf")
        for _ in range(repeats):
            workers = [
                threading.Thread(target=np.copyto, args=(dst[lo:hi], src[lo:hi]))
                for lo, hi in bounds
            ]
            began = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            best = min(best, time.perf_counter() - began)
        out[f"copy_gb_per_s_{threads}_threads"] = round(2 * src.nbytes / best / 1e9, 1)
    return out


def ingest(corpus: Path, env: dict[str, str]) -> dict[str, Any]:
    """`rag-ingest` of the corpus as its own process: seconds and peak RSS."""
    began = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [str(BIN / "rag-ingest"), str(corpus), "--collection", POLICY, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(done.stdout)
    return {
        "corpus": str(corpus),
        "chunks": summary["chunks"],
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_rss_note": "" if peak_kb > before else "no larger than an earlier child",
    }


def model_bound(bw: dict[str, float], data_dir: Path) -> dict[str, Any]:
    """Generation must read every weight once per token: bandwidth / model bytes bounds tokens/s."""
    from rag_core.settings import load_settings
    from rag_server.generation import default_model_path

    settings = load_settings(data_dir=data_dir)
    path = settings.generator.model_path or default_model_path(settings.models_home)
    size = path.stat().st_size
    best = max(bw.values())
    return {
        "gguf": path.name,
        "bytes": size,
        "n_threads": settings.generator.n_threads,
        "n_ctx": settings.generator.n_ctx,
        "bandwidth_bound_tokens_per_s": round(best * 1e9 / size, 1),
    }


def replicate(data_dir: Path, size: int, noise: float = 0.02) -> None:
    """Collection n{size}: the real chunks and vectors, copied with variations up to `size`."""
    from rag_core.embedding import EmbedderIdentity
    from rag_core.settings import load_settings
    from rag_core.store import Chunk, ChunkStore, open_client

    settings = load_settings(data_dir=data_dir)
    client = open_client(settings)
    identity = EmbedderIdentity(settings.embedder.name, 384, settings.embedder.variant)
    source = ChunkStore(client, POLICY, identity)
    got = source.collection.get(include=["documents", "metadatas", "embeddings"])  # type: ignore[list-item]
    chunks = [
        Chunk.from_record(i, t, m)
        for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    ]
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    target = ChunkStore(client, f"n{size}", identity)
    if target.count() >= size:
        return
    rng = np.random.default_rng(size)
    began = time.perf_counter()
    batch: list[Chunk] = []
    rows: list[np.ndarray] = []
    for n in range(size):
        replica, k = divmod(n, len(chunks))
        chunk = chunks[k]
        if replica:
            chunk = dataclasses.replace(
                chunk,
                chunk_id=f"{chunk.chunk_id}-r{replica}",
                document_id=f"r{replica}/{chunk.document_id}",
                source=f"r{replica}/{chunk.source}",
                text=f"{chunk.text} (replica {replica})",
            )
            vector = vectors[k] + rng.normal(0, noise, vectors.shape[1]).astype(np.float32)
            vector /= np.linalg.norm(vector)
        else:
            vector = vectors[k]
        batch.append(chunk)
        rows.append(vector)
        if len(batch) >= target.max_batch or n == size - 1:
            target.upsert(batch, np.stack(rows))
            batch, rows = [], []
    target.bump_revision()
    print(f"wrote {size} chunks in {time.perf_counter() - began:.1f}s")


def search_latency(server: Any, questions: list[str], count: int) -> dict[str, Any]:
    client = server.client()
    for q in questions[:5]:  # warm-up
        client.post("/v1/search", json={"query": q}).raise_for_status()
    latencies, stages = [], []
    for n in range(count):
        began = time.perf_counter()
        response = client.post("/v1/search", json={"query": questions[n % len(questions)]})
        latencies.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        stages.append(response.json().get("timings_ms", {}))
    return {
        "searches": count,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "server_p50_ms": {
            k: round(percentile([s[k] for s in stages if k in s], 50), 2) for k in stages[0]
        },
    }


def _stream_ask(client: Any, question: str) -> dict[str, Any]:
    """One streamed /v1/ask, client side: the first streamed token, the first answer text (a token,
    or the final event when nothing is streamed: a quoted answer or a refusal), and the total."""
    began = time.perf_counter()
    first = first_text = None
    event = ""
    final: dict[str, Any] = {}
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                if event in ("token", "final") and first_text is None:
                    first_text = time.perf_counter() - began
                if event == "token" and first is None:
                    first = time.perf_counter() - began
                elif event == "final":
                    final = json.loads(line.split(":", 1)[1])
    total = time.perf_counter() - began
    return {"ttft_s": first, "first_text_s": first_text, "total_s": total, "final": final}


def _hit(result: dict[str, Any]) -> Any:
    """A /v1/search result as the Hit the prompt is rendered from (offsets play no part)."""
    from rag_core.store import Chunk, Hit

    chunk = Chunk(
        chunk_id=result["chunk_id"],
        document_id=result["document_id"],
        source=result["source"],
        title=result["title"],
        text=result["text"],
        start=0,
        end=0,
        chunk_index=0,
        chunk_count=1,
        content_hash="",
        pipeline="",
        ingested_at="",
        page=result["page"],
        section=result["section"],
    )
    return Hit(chunk, result["score"])


class RawLlama:
    """The baseline: llama-cpp-python alone, same GGUF, n_ctx and threads as the server."""

    def __init__(self, data_dir: Path) -> None:
        from llama_cpp import Llama

        from rag_core.settings import load_settings
        from rag_server.generation import default_model_path

        self.settings = load_settings(data_dir=data_dir)
        g = self.settings.generator
        path = g.model_path or default_model_path(self.settings.models_home)
        self.llm = Llama(
            model_path=str(path),
            n_ctx=g.n_ctx,
            n_threads=g.n_threads,
            n_threads_batch=g.n_threads,
            seed=0,
            verbose=False,
        )

    def prompt_for(self, question: str, results: list[dict[str, Any]]) -> Any:
        """The server's prompt, rendered from the same passages (/v1/search gives the same hits)."""
        from rag_server.generation import detect_style
        from rag_server.prompting import build_prompt

        hits = [_hit(r) for r in results[: self.settings.retrieval.prompt_sources]]
        metadata = {k: str(v) for k, v in (self.llm.metadata or {}).items()}
        cfg = self.settings.generator
        style = detect_style(metadata) if cfg.prompt_style == "auto" else cfg.prompt_style
        return build_prompt(
            style,
            question,
            hits,
            lambda text: len(self.llm.tokenize(text.encode(), add_bos=False, special=False)),
            int(self.llm.n_ctx()) - cfg.max_tokens - 16,
        ).prompt

    def run(self, prompt: Any, reset: bool = False) -> dict[str, float]:
        if reset:
            self.llm.reset()  # forget the previous prompt's KV: no prefix reuse
        cfg = self.settings.generator
        began = time.perf_counter()
        first, pieces = None, 0
        stream: Iterator[Any] = self.llm.create_completion(  # type: ignore[assignment]
            prompt.text,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            stop=list(prompt.stop) or None,
            stream=True,
        )
        for _ in stream:
            pieces += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert first is not None
        return {
            "ttft_s": first - began,
            "total_s": end - began,
            "tokens": pieces,
            "decode_tok_s": (pieces - 1) / (end - first) if pieces > 1 else float("nan"),
            "prompt_tokens": len(self.llm.tokenize(prompt.text.encode())),
        }


def ask_latency(server: Any, questions: list[str], data_dir: Path | None) -> dict[str, Any]:
    """Every question streamed; with `data_dir`, each generation is also run on raw
    llama-cpp-python (same GGUF, prompt and threads), interleaved, as the baseline."""
    client = server.client()
    raw = RawLlama(data_dir) if data_dir is not None else None
    _stream_ask(client, questions[0])  # warm-up, both sides
    rows = []
    for question in questions:
        asked = _stream_ask(client, question)
        final = asked["final"]
        timings = final.get("timings_ms", {})
        row: dict[str, Any] = {
            "status": final.get("status"),
            "ttft_s": asked["ttft_s"],
            "first_text_s": asked["first_text_s"],
            "total_s": asked["total_s"],
            "timings_ms": timings,
            "usage": final.get("usage"),
        }
        if raw is not None and "generate" in timings and "first_token" in timings:
            completion = final["usage"]["completion_tokens"]
            decode_ms = timings["generate"] - timings["first_token"]
            row["server_decode_tok_s"] = (
                (completion - 1) / (decode_ms / 1000) if completion > 1 else None
            )
            results = client.post("/v1/search", json={"query": question}).json()["results"]
            prompt = raw.prompt_for(question, results)
            row["raw"] = raw.run(prompt)  # B: after the previous prompt (prefix reused)
            row["raw_cold"] = raw.run(prompt, reset=True)  # no reuse, same prompt
            row["prompt_tokens_server"] = final["usage"]["prompt_tokens"]
        rows.append(row)
    generated = [r for r in rows if "raw" in r]

    def stat(values: list[float], q: float) -> float:
        return round(percentile([v for v in values if v is not None], q), 3)

    summary = {
        "questions": len(rows),
        "status_counts": {
            s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}
        },
        "total_p50_s": stat([r["total_s"] for r in rows], 50),
        "total_p95_s": stat([r["total_s"] for r in rows], 95),
        "first_text_p50_s": stat([r["first_text_s"] for r in rows], 50),
        "first_text_p95_s": stat([r["first_text_s"] for r in rows], 95),
        "rows": rows,
    }
    if not generated:
        return summary
    server_decode = [r["server_decode_tok_s"] for r in generated if r["server_decode_tok_s"]]
    raw_decode = [r["raw"]["decode_tok_s"] for r in generated if r["raw"]["tokens"] > 1]
    pp_server = [
        r["prompt_tokens_server"] / (r["timings_ms"]["first_token"] / 1000) for r in generated
    ]
    pp_raw = [r["raw_cold"]["prompt_tokens"] / r["raw_cold"]["ttft_s"] for r in generated]
    pp_raw_warm = [r["raw"]["prompt_tokens"] / r["raw"]["ttft_s"] for r in generated]
    return {
        **summary,
        "generated": len(generated),
        "ttft_p50_s": stat([r["ttft_s"] for r in generated], 50),
        "ttft_p95_s": stat([r["ttft_s"] for r in generated], 95),
        "total_p50_s_generated": stat([r["total_s"] for r in generated], 50),
        "server_decode_tok_s_median": stat(server_decode, 50),
        "raw_decode_tok_s_median": stat(raw_decode, 50),
        "decode_ratio_server_to_raw": round(stat(server_decode, 50) / stat(raw_decode, 50), 3),
        "server_prompt_tok_s_median": stat(pp_server, 50),
        "raw_prompt_tok_s_median_cold": stat(pp_raw, 50),
        "raw_prompt_tok_s_median_prefix_reused": stat(pp_raw_warm, 50),
        "raw_ttft_p50_s_prefix_reused": stat([r["raw"]["ttft_s"] for r in generated], 50),
        "raw_ttft_p50_s_cold": stat([r["raw_cold"]["ttft_s"] for r in generated], 50),
        "server_stage_p50_ms": {
            k: stat([r["timings_ms"][k] for r in generated if k in r["timings_ms"]], 50)
            for k in generated[0]["timings_ms"]
        },
    }


def markdown(result: dict[str, Any]) -> str:
    quoted, ask = result["ask"], result["ask_generate"]
    model, bw = result["model"], result["bandwidth"]
    lines = [
        "| `/v1/search` | chunks | p50 ms | p95 ms | server startup s | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for size, row in result["search"].items():
        lines.append(
            f"| | {int(size):,} | {row['p50_ms']} | {row['p95_ms']} | {row['startup_s']} | "
            f"{row['peak_rss_mb']} |"
        )
    lines += [
        "",
        f"`/v1/ask`, default model, {ask['questions']} dev questions, streamed. Defaults (a base "
        f"model's answer is quoted: {quoted['status_counts']}); and with "
        f"`RAG_GROUNDING__ANSWER_MODE=generate` ({ask['generated']} reached the model; "
        f"{ask['status_counts']}):",
        "",
        "| measure | defaults p50 | defaults p95 | model writes p50 | model writes p95 |",
        "|---|---|---|---|---|",
        f"| total latency (s) | {quoted['total_p50_s']} | {quoted['total_p95_s']} | "
        f"{ask['total_p50_s']} | {ask['total_p95_s']} |",
        f"| time to the first answer text (s) | {quoted['first_text_p50_s']} | "
        f"{quoted['first_text_p95_s']} | {ask['first_text_p50_s']} | {ask['first_text_p95_s']} |",
        f"| time to first streamed token (s) | | | {ask['ttft_p50_s']} | {ask['ttft_p95_s']} |",
        "",
        "| generation (median) | in the server | raw llama-cpp-python, same run | ratio |",
        "|---|---|---|---|",
        f"| decode tokens/s | {ask['server_decode_tok_s_median']} | "
        f"{ask['raw_decode_tok_s_median']} | **{ask['decode_ratio_server_to_raw']}** |",
        f"| prompt tokens/s (prompt tokens / time to first token) | "
        f"{ask['server_prompt_tok_s_median']} | {ask['raw_prompt_tok_s_median_prefix_reused']} | "
        f"{ask['server_prompt_tok_s_median'] / ask['raw_prompt_tok_s_median_prefix_reused']:.3f} |",
        "",
        f"Memory-bandwidth bound: {model['gguf']} is {model['bytes'] / 1e6:.0f} MB, copy "
        f"bandwidth {bw}, so at most **{model['bandwidth_bound_tokens_per_s']} tokens/s**; "
        f"measured in-server decode is "
        f"{ask['server_decode_tok_s_median'] / model['bandwidth_bound_tokens_per_s']:.0%} of it.",
        "",
        f"Prompt-prefix reuse (llama.cpp keeps the previous prompt's KV; our prompts share the "
        f"instruction block): raw TTFT p50 {ask['raw_ttft_p50_s_prefix_reused']} s with reuse, "
        f"{ask['raw_ttft_p50_s_cold']} s from a reset context.",
        "",
        f"Server startup {result['server']['startup_s']} s; peak RSS with the default model "
        f"{result['server']['peak_rss_mb_after_asks']} MB. Ingest of the corpus "
        f"({result['ingest']['chunks']} chunks): {result['ingest']['seconds']} s, peak RSS "
        f"{result['ingest']['peak_rss_mb']} MB.",
        "",
        f"Server stages, p50 ms: {ask['server_stage_p50_ms']}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
