"""Every evaluation corpus through a real `rag-server` over HTTP, with the shipped defaults:
per corpus and pooled accuracy, abstention by kind, page checks and latency.

    .venv/bin/python bench/eval_suite.py [--corpora a,b] [--data DIR] [--port 8013]
        [--env RAG_X=Y ...] [--name eval_suite]

The corpora (eval/corpora.json) are ingested into their own collections under --data first
(bench/grounding_suite.py uses the same directory, so a second run ingests nothing). Writes
bench/results/NAME.json and NAME.md (default eval_suite). --spec eval/twins.json runs corpora
read again in another format (the HIPAA policies as PDF) with their original questions. The
writing path, for example:

    bench/eval_suite.py --name eval_suite_smollm2 --env RAG_GENERATOR__MODEL_PATH=.../SmolLM2.gguf \
        --env RAG_GROUNDING__ANSWER_MODE=generate
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchlib import BIN, ROOT, environment, running_server, write_results

from rag_server.evaluation import Record, run_one, source_in, summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", help="comma-separated names (default: all)")
    parser.add_argument(
        "--spec",
        type=Path,
        default=ROOT / "eval" / "corpora.json",
        help="the corpora (eval/twins.json: corpora read again in another format)",
    )
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data" / "suite")
    parser.add_argument("--port", type=int, default=8013)
    parser.add_argument("--env", action="append", default=[], help="extra RAG_X=Y for the server")
    parser.add_argument(
        "--name", default="eval_suite", help="results file name under bench/results"
    )
    args = parser.parse_args()
    spec = json.loads(args.spec.read_text())
    names = args.corpora.split(",") if args.corpora else list(spec)
    env = {"RAG_DATA_DIR": str(args.data), "RAG_LIMITS__REQUESTS_PER_MINUTE": "100000"}
    env.update(dict(item.split("=", 1) for item in args.env))
    for name in names:  # incremental: unchanged corpora are not written again
        subprocess.run(
            [BIN / "rag-ingest", *[str(ROOT / p) for p in spec[name]["paths"]],
             "--collection", f"eval-{name}", "--json"],
            env={**env, "PATH": str(BIN)}, check=True, capture_output=True,
        )  # fmt: skip
    results: dict[str, Any] = {}
    pooled: list[Record] = []
    with running_server(env, args.port) as server, server.client() as client:
        for name in names:
            lines = (ROOT / spec[name]["questions"]).read_text().splitlines()
            items = [json.loads(line) for line in lines if line.strip()]
            for item in items:  # a twin names its sources with its own format's suffix
                item["source"] = item["source"] and source_in(spec[name], item["source"])
            records = [run_one(client, item, f"eval-{name}") for item in items]
            pooled += records
            results[name] = summarise(records)
            print(name, json.dumps(results[name]["overall"]), file=sys.stderr)
        peak = server.peak_rss_mb()
    results["pooled"] = summarise(pooled)
    data = {"environment": environment(), "server_env": env, "peak_rss_mb": peak, **results}
    write_results(args.name, data, markdown(results, names))


def markdown(results: dict[str, Any], names: list[str]) -> str:
    keys = [
        ("hit_at_5", "answerable"),
        ("accuracy", "answerable"),
        ("false_abstention", "answerable"),
        ("refusal_points_to_answer", "answerable"),
        ("abstention_adjacent", "unanswerable"),
        ("abstention_adversarial", "unanswerable"),
        ("abstention", "unanswerable"),
        ("page_ok", "answerable"),
        ("latency_p50_s", "overall"),
        ("latency_p95_s", "overall"),
        ("written", "overall"),
        ("written_wrong", "overall"),
        ("removed_share", "overall"),
    ]
    lines = [
        "| corpus | questions | " + " | ".join(k for k, _ in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for name in [*names, "pooled"]:
        r = results[name]
        cells = " | ".join("–" if r[p][k] is None else str(r[p][k]) for k, p in keys)
        lines.append(f"| {name} | {r['overall']['questions']} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
