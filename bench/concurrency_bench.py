"""`/v1/ask` under 1, 4 and 16 concurrent clients on loopback: throughput, p50/p95, error mix.

    python bench/concurrency_bench.py [--levels 1,4,16] [--seconds 90] [--answer-mode generate]

A real `rag-server` (default model, Debian Policy corpus ingested once into --data-dir) serves
closed-loop clients: each asks the next answerable dev question as soon as its previous request
ends, and after a 429/503 waits the Retry-After (capped at 2 s) before trying again. The model
generates one answer at a time and RAG_GENERATOR__QUEUE_DEPTH (default 4) may wait, so an
accepted request's latency should grow with its queue position, not more: the target is
p95(latency / queue position) <= 2 x the single-client p95. A request's queue position is the
number of accepted requests in flight when it was sent, itself included.
With the defaults a base model's answers are quoted and the model is not called, so requests do
not queue for it; `--answer-mode generate` measures the queue in front of the model. The per-key
rate limit is raised for the run, so that the figures are the server's, not the limiter's.
Writes bench/results/concurrency[-MODE].{json,md,png}. About 6 minutes per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    BIN,
    QA,
    ROOT,
    api_key_arg,
    async_http_client,
    default_corpus,
    load_questions,
    percentile,
    running_server,
    write_results,
)

COLLECTION = "policy"


async def _client(
    url: str, api_key: str | None, questions: list[str], start: int, until: float
) -> list[dict[str, Any]]:
    records = []
    n = start
    async with async_http_client(url, api_key) as client:
        while time.perf_counter() < until:
            question = questions[n % len(questions)]
            n += 1
            began = time.perf_counter()
            try:
                response = await client.post("/v1/ask", json={"question": question})
                status = response.status_code
                retry = float(response.headers.get("retry-after", 0) or 0)
            except Exception as exc:  # a transport error is part of the error mix
                status, retry = type(exc).__name__, 1.0
            ended = time.perf_counter()
            records.append({"status": status, "start": began, "end": ended})
            if status != 200:
                await asyncio.sleep(min(retry, 2.0))
    return records


def _level(
    url: str, api_key: str | None, questions: list[str], clients: int, seconds: float
) -> Any:
    async def run() -> list[dict[str, Any]]:
        until = time.perf_counter() + seconds
        tasks = [_client(url, api_key, questions, i * 7, until) for i in range(clients)]
        return [r for rs in await asyncio.gather(*tasks) for r in rs]

    return asyncio.run(run())


def summarise(records: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == 200]
    for r in ok:  # queue position: accepted requests in flight when it was sent, itself included
        r["position"] = sum(o["start"] <= r["start"] < o["end"] for o in ok)
    latency = [r["end"] - r["start"] for r in ok]
    return {
        "requests": len(records),
        "accepted": len(ok),
        "status_mix": {str(k): v for k, v in Counter(str(r["status"]) for r in records).items()},
        "throughput_per_s": round(len(ok) / seconds, 3),
        "p50_s": round(percentile(latency, 50), 3),
        "p95_s": round(percentile(latency, 95), 3),
        "p95_per_position_s": round(
            percentile([(r["end"] - r["start"]) / r["position"] for r in ok], 95), 3
        ),
        "max_position": max((r["position"] for r in ok), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=90.0, help="per level")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--port", type=int, default=8032)
    parser.add_argument("--answer-mode", choices=("auto", "generate", "extract"), default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    api_key_arg(parser)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    env = {"RAG_DATA_DIR": str(args.data_dir), "RAG_COLLECTION": COLLECTION, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [str(BIN / "rag-ingest"), str(default_corpus()), "--if-empty"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from rag_core.settings import load_settings

    depth = load_settings().generator.queue_depth
    questions = [q["question"] for q in load_questions(QA, "dev")]
    rows: dict[str, Any] = {}
    serve = {
        **env,
        "RAG_GROUNDING__ANSWER_MODE": args.answer_mode,
        "RAG_LIMITS__REQUESTS_PER_MINUTE": "1000000",
    }
    with running_server(serve, args.port, args.api_key) as server:
        _level(server.url, server.api_key, questions, 1, 10)  # warm-up
        for clients in levels:
            rows[str(clients)] = summarise(
                _level(server.url, server.api_key, questions, clients, args.seconds), args.seconds
            )
            print(clients, rows[str(clients)])
    single = rows.get("1", {}).get("p95_s")
    for row in rows.values():
        if single:
            row["p95_per_position_over_single_p95"] = round(row["p95_per_position_s"] / single, 2)
        errors = set(row["status_mix"]) - {"200", "429", "503"}
        row["unexpected_errors"] = sorted(errors)
    result = {
        "levels": rows,
        "seconds_per_level": args.seconds,
        "queue_depth": depth,
        "answer_mode": args.answer_mode,
    }
    name = "concurrency" if args.answer_mode == "auto" else f"concurrency-{args.answer_mode}"
    write_results(name, result, markdown(result, name), args.out)
    plot(result, args.out / f"{name}.png")


def markdown(result: dict[str, Any], name: str) -> str:
    lines = [
        f"Closed-loop clients on `/v1/ask` for {result['seconds_per_level']:.0f} s per level, "
        f"queue depth {result['queue_depth']}, default model, answer mode "
        f"`{result['answer_mode']}`.\n",
        "| clients | accepted/s | p50 s | p95 s | p95 / queue position, ÷ single p95 | "
        "status mix | unexpected errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients, row in result["levels"].items():
        lines.append(
            f"| {clients} | {row['throughput_per_s']} | {row['p50_s']} | {row['p95_s']} | "
            f"{row.get('p95_per_position_over_single_p95', '')} | {row['status_mix']} | "
            f"{row['unexpected_errors'] or 'none'} |"
        )
    lines.append(f"\n![latency against concurrency]({name}.png)")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [int(c) for c in result["levels"]]
    rows = list(result["levels"].values())
    fig, left = plt.subplots(figsize=(6, 3.6))
    left.plot(levels, [r["p50_s"] for r in rows], "o-", label="p50 latency")
    left.plot(levels, [r["p95_s"] for r in rows], "s-", label="p95 latency")
    left.set_xscale("log", base=2)
    left.set_xticks(levels, [str(x) for x in levels])
    left.set_xlabel("concurrent clients")
    left.set_ylabel("accepted request latency (s)")
    right = left.twinx()
    right.bar(levels, [r["throughput_per_s"] for r in rows], width=[x * 0.25 for x in levels],
              alpha=0.25, color="grey", label="accepted/s")  # fmt: skip
    right.set_ylabel("accepted requests/s")
    left.legend(loc="upper left")
    left.set_title(f"/v1/ask on 2 cores, default model, answer mode {result['answer_mode']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
