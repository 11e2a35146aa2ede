"""Chunking time and memory on pathological and normal text of the same size (issue 16.3).

    python bench/chunking_bench.py [--sizes 1,20] [--label after] [--timeout 900]
    git show e77ba4c:ingest/chunking.py > /tmp/old_chunking.py   # the chunker before the fix
    python bench/chunking_bench.py --label before --chunker /tmp/old_chunking.py

Cases, each in a fresh process so its memory is its own: `repeated` is one English sentence
repeated to the size (the upload that took the server down), `normal` is the example documents'
extracted text, concatenated and repeated to the same size. Each reports the seconds
`Chunker.split` took, the chunk count (or the error it raised), the process's resident memory
before, at its peak and after the chunks are dropped. `--chunker FILE` measures another version
of ingest/chunking.py (a baseline) with everything else unchanged. The tokenizer is the packaged embedder's
(the one the ONNX backend loads), the chunk size the shipped default. Results are appended under
LABEL to bench/results/chunking.json and the table is rewritten to bench/results/chunking.md, so
a run before a change and one after it sit side by side.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, environment

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "
MB = 1_000_000


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _text(kind: str, size: int) -> str:
    if kind == "repeated":
        unit = SENTENCE
    else:
        from ingest.loaders import load

        docs = sorted((ROOT / "examples" / "docs").iterdir())
        unit = "\n\n".join(load(p, p.read_bytes()).text for p in docs) + "\n\n"
    return (unit * (size // len(unit) + 1))[:size]


def _chunker_class(path: str | None) -> Any:
    if path is None:
        from ingest.chunking import Chunker

        return Chunker
    spec = importlib.util.spec_from_file_location("baseline_chunking", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.Chunker


def run_case(kind: str, size: int, chunker_file: str | None) -> dict[str, Any]:
    """One case in this process: warm the splitter up first (a text long enough to make it load
    its sentence tokenizer), so imports are not timed."""
    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer

    from ingest.loaders import LoadedDocument
    from rag_core.embedding import packaged_model_path
    from rag_core.settings import load_settings

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()), local_files_only=True)
    settings = load_settings().ingest
    chunker = _chunker_class(chunker_file)(
        lambda t: list(tokenizer.tokenize(t)), settings.chunk_size, settings.chunk_overlap
    )
    chunker.split(LoadedDocument("Warm up, please. " * 200, "w"))
    document = LoadedDocument(_text(kind, size), kind)
    gc.collect()
    before = _rss_mb()
    began = time.perf_counter()
    try:
        outcome: Any = len(chunker.split(document))
    except Exception as exc:  # the splitter's failures are what this measures
        outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
    seconds = time.perf_counter() - began
    gc.collect()
    return {
        "case": kind,
        "mb": size / MB,
        "seconds": round(seconds, 2),
        "chunks_or_error": outcome,
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(_peak_mb(), 1),
        "rss_after_mb": round(_rss_mb(), 1),
    }


def _spawn(kind: str, size: int, timeout: float, chunker_file: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--case", f"{kind}:{size}"]
    if chunker_file:
        cmd += ["--chunker", chunker_file]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"case": kind, "mb": size / MB, "seconds": None, "chunks_or_error": "timeout"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return {"case": kind, "mb": size / MB, "seconds": None, "chunks_or_error": tail[0]}
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def _markdown(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "# Chunking: one repeated sentence vs normal text (issue 16.3)",
        "",
        "`python bench/chunking_bench.py --sizes 1,20 --label LABEL`; seconds of `Chunker.split`",
        "alone (no embedding), resident memory of a fresh process. Ratio: repeated / normal at",
        "the same size. Shared 2-core machine: the load average is in chunking.json.",
        "",
        "| run | case | MB | seconds | s/MB | chunks or error | RSS before / peak / after MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, rows in runs.items():
        for r in rows:
            secs = r.get("seconds")
            per = f"{secs / r['mb']:.2f}" if secs is not None else "-"
            mem = "/".join(
                str(r.get(k, "-")) for k in ("rss_before_mb", "rss_peak_mb", "rss_after_mb")
            )
            lines.append(
                f"| {label} | {r['case']} | {r['mb']:g} | {secs if secs is not None else '-'} | "
                f"{per} | {r['chunks_or_error']} | {mem} |"
            )
    lines += ["", "Ratios (repeated / normal seconds):", ""]
    for label, rows in runs.items():
        by = {(r["case"], r["mb"]): r.get("seconds") for r in rows}
        for mb in sorted({r["mb"] for r in rows}):
            rep, norm = by.get(("repeated", mb)), by.get(("normal", mb))
            if rep and norm:
                lines.append(f"- {label}, {mb:g} MB: {rep / norm:.1f}x")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,20", help="MB, comma-separated")
    parser.add_argument("--label", default="current")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    parser.add_argument("--chunker", help="another ingest/chunking.py to measure (a baseline)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, size = args.case.split(":")
        print(json.dumps(run_case(kind, int(size), args.chunker)))
        return
    rows = []
    for mb in (float(s) for s in args.sizes.split(",")):
        for kind in ("normal", "repeated"):
            row = _spawn(kind, int(mb * MB), args.timeout, args.chunker)
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = ROOT / "bench" / "results" / "chunking.json"
    saved = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    saved["runs"][args.label] = rows
    saved.setdefault("environment", {})[args.label] = environment()
    out.write_text(json.dumps(saved, indent=2) + "\n")
    markdown = _markdown(saved["runs"])
    (out.parent / "chunking.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
