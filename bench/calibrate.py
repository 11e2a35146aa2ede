"""Calibrate the evidence gate and the extractive threshold on a question set; plot the trade-off.

These are the thresholds of RAG_GROUNDING__SCORER=similarity (the previous ranker); the answer
model's threshold and combiner come from bench/grounding_suite.py, leaving one corpus out.

    RAG_DATA_DIR=... RAG_COLLECTION=... python bench/calibrate.py eval/debian-policy.jsonl --split dev

One pass per question records every signal the thresholds act on (best retrieval cosine, the
verified model answer, the best extractive sentence and its score), with the gate off. Every
threshold pair is then simulated exactly, offline. Writes bench/results/calibration.json and
gate_curve.png. The chosen point maximises accuracy subject to abstention >= 90% and false
abstention <= 15%; when no point meets both, abstention wins (a refusal costs less than an
invented fact).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchlib import NoModel, load_questions

ROOT = Path(__file__).resolve().parent.parent


def collect(
    qa: list[dict[str, Any]], generations: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per question. With `generations` (id -> raw model text from an earlier run), the
    model is not called again: verification and ranking are recomputed with the current code."""
    from rag_core.embedding import load_embedder
    from rag_core.settings import load_settings
    from rag_server.grounding import extractive, verify
    from rag_server.rag import assemble, build_rag

    settings = load_settings()
    if generations is None:
        rag = build_rag(settings)
    else:
        rag = assemble(settings, load_embedder(settings.embedder, settings.models_home), NoModel())
    service, generator = rag.service, rag.generator
    corpus = rag.catalog.get()
    rows = []
    for item in qa:
        question = item["question"]
        began = time.perf_counter()
        hits = corpus.retriever.retrieve(question, settings.retrieval.top_k)
        rendered = service.writer.fit(question, hits)  # the service's own prompt and budget
        if service.answer_mode == "extract":
            raw = ""  # the model is not asked to write (RAG_GROUNDING__ANSWER_MODE)
        elif generations is None:
            raw = generator.generate(
                rendered.prompt, settings.generator.max_tokens, time.monotonic() + 120
            ).text
        else:
            raw = generations[item["id"]]
        sources = rendered.sources
        verified = verify(raw, sources, [h.score for h in sources], service.policy)
        scorer = service.similarity_scorer(question, corpus.keyword.current())
        extracted = extractive(
            question, hits, [h.score for h in hits], service.policy, score=scorer
        )
        ex_score = extracted.score if extracted.score is not None else -9.0
        rows.append(
            {
                "id": item["id"],
                "answerable": item["answerable"],
                "answers": item["answers"],
                "best": max((h.score for h in hits), default=-1.0),
                "raw": raw,
                "verified": verified.answer if verified.status == "answered" else None,
                "extractive": extracted.answer if extracted.citations else None,
                "extractive_score": ex_score,
                "seconds": round(time.perf_counter() - began, 3),
            }
        )
        print(f"{item['id']} best={rows[-1]['best']:.2f} ex={ex_score:.2f}", flush=True)
    return rows


def outcome(
    row: dict[str, Any], gate: float, ex_threshold: float, weak: float, relevance: float = 0.3
) -> str | None:
    """The answer the service would give at these thresholds (None: refusal): below the gate the
    model is not asked, and a quote must score `weak` (RagService._ask)."""
    if row["best"] < relevance:
        return None
    if row["best"] < gate:
        ok = row["extractive"] and row["extractive_score"] >= max(weak, ex_threshold)
        return str(row["extractive"]) if ok else None
    if row["verified"]:
        return str(row["verified"])
    if row["extractive"] and row["extractive_score"] >= ex_threshold:
        return str(row["extractive"])
    return None


def score(
    rows: list[dict[str, Any]], gate: float, ex_threshold: float, weak: float
) -> dict[str, float]:
    from rag_server.evaluation import is_correct

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answers = {r["id"]: outcome(r, gate, ex_threshold, weak) for r in rows}
    correct = [
        bool(answers[r["id"]]) and is_correct(str(answers[r["id"]]), r["answers"])
        for r in answerable
    ]
    return {
        "gate": round(gate, 3),
        "extractive_threshold": round(ex_threshold, 3),
        "weak_extractive_threshold": round(weak, 3),
        "accuracy": 100.0 * sum(correct) / max(1, len(answerable)),
        "abstention": 100.0
        * sum(answers[r["id"]] is None for r in unanswerable)
        / max(1, len(unanswerable)),
        "false_abstention": 100.0
        * sum(answers[r["id"]] is None for r in answerable)
        / max(1, len(answerable)),
    }


def choose(grid: list[dict[str, float]]) -> dict[str, float]:
    """Ties go to the lowest weak threshold, then the lowest gate: passage cosines vary by corpus
    more than sentence scores do, so the bar a weak passage's quote must pass should be the
    lowest the dev split allows."""
    feasible = [g for g in grid if g["abstention"] >= 90 and g["false_abstention"] <= 15]
    if feasible:
        return max(
            feasible,
            key=lambda g: (
                g["accuracy"],
                g["abstention"],
                -g["weak_extractive_threshold"],
                -g["gate"],
            ),
        )
    safe = [g for g in grid if g["abstention"] >= 90]
    if safe:
        return max(safe, key=lambda g: (g["accuracy"], -g["false_abstention"], -g["gate"]))
    return max(grid, key=lambda g: (g["abstention"], g["accuracy"], -g["gate"]))


def plot(rows: list[dict[str, Any]], chosen: dict[str, float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gates = [g / 100 for g in range(10, 91)]
    ex, weak = chosen["extractive_threshold"], chosen["weak_extractive_threshold"]
    curves = [score(rows, g, ex, weak) for g in gates]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label in (
        ("accuracy", "answer accuracy (answerable)"),
        ("abstention", "abstention (unanswerable)"),
        ("false_abstention", "false abstention (answerable)"),
    ):
        ax.plot(gates, [c[key] for c in curves], label=label)
    ax.axvline(chosen["gate"], color="grey", linestyle="--", label=f"default gate {chosen['gate']}")
    ax.set_xlabel("evidence gate threshold (best passage cosine)")
    ax.set_ylabel("%")
    ax.set_title(f"Gate trade-off (extractive thresholds {ex}, below the gate {weak})")
    ax.legend(loc="center left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa", type=Path)
    parser.add_argument("--split", help="tune on this split; report the others as held out")
    parser.add_argument(
        "--rows", type=Path, help="reuse rows from an earlier collection as they are"
    )
    parser.add_argument(
        "--reuse-generations", type=Path, help="rows file whose model outputs to replay (no model)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    qa = load_questions(args.qa, answerable=None)
    splits = {q["id"]: q.get("split") for q in qa}
    rows_path = args.out / "calibration_rows.jsonl"
    if args.rows:
        rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    elif args.reuse_generations:
        old = [json.loads(line) for line in args.reuse_generations.read_text().splitlines() if line]
        rows = collect(qa, {r["id"]: r["raw"] for r in old})
        rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        rows = collect(qa)
        rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tune = [r for r in rows if not args.split or splits.get(r["id"]) == args.split]
    held_out = [r for r in rows if args.split and splits.get(r["id"]) != args.split]
    grid = [
        score(tune, g / 100, e / 100, w / 100)
        for g in range(30, 91, 1)
        for e in range(20, 201, 5)
        for w in range(e, 251, 5)
    ]
    chosen = choose(grid)
    gate, ex, weak = (
        chosen["gate"],
        chosen["extractive_threshold"],
        chosen["weak_extractive_threshold"],
    )
    plot(tune, chosen, args.out / "gate_curve.png")
    result = {
        "chosen_on": args.split or "all",
        "chosen": chosen,
        "held_out": score(held_out, gate, ex, weak) if held_out else None,
        "all": score(rows, gate, ex, weak),
        "questions": {"tuned": len(tune), "held_out": len(held_out)},
    }
    (args.out / "calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
