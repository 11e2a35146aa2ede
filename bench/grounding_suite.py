"""Grounding on several corpora, leave one corpus out: the answer threshold reported for a corpus is
chosen on the other corpora only, and the shipped default is chosen on all of them.

    .venv/bin/python bench/grounding_suite.py [--corpora a,b] [--data DIR] [--out bench/results]

For each corpus (eval/corpora.json) the documents are ingested into their own collection (kept
in --data between runs), and every question is retrieved once. Each candidate sentence is scored
once by each sentence scorer: the trained answer model, and the previous cosine + IDF overlap.
Every threshold is then simulated exactly, offline, with the service's own `extractive()`. Writes
grounding_suite.json, grounding_suite.md and grounding_curve.png to --out.

--export-pairs DIR writes the corpora's training pairs for training/answer_scorer/loo.py, and
--logits FILE judges every corpus with the answer-model logits that script wrote (each from a
model trained without that corpus), and --scorer DIR with another exported answer model.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import NoModel  # noqa: E402

from rag_core.access import UNRESTRICTED  # noqa: E402
from rag_core.embedding import Embedder  # noqa: E402
from rag_core.store import Hit  # noqa: E402
from rag_server.answerability import (  # noqa: E402
    Answerability,
    Combiner,
    can_answer,
    question_type,
)
from rag_server.evaluation import interval, is_correct, mean_interval, percent  # noqa: E402
from rag_server.grounding import (  # noqa: E402
    STOPWORDS,
    Policy,
    Verified,
    content_words,
    extractive,
    overlap_scores,
    passage_spans,
)
from rag_server.language import focus  # noqa: E402
from rag_server.retrieval import Filters  # noqa: E402

MODEL_GRID = [round(0.01 * i, 2) for i in range(1, 100)]
SIMILARITY_GRID = [round(0.5 + 0.025 * i, 3) for i in range(81)]
# The targets the defaults must meet on every held-out corpus (issue: grounding that transfers).
TARGET_ADJACENT, TARGET_ADVERSARIAL = 90, 70  # percent, as metrics() reports abstention
Score = Callable[[str, list[str]], list[float]]


@dataclass
class Question:
    corpus: str
    item: dict[str, Any]
    hits: list[Hit]
    sentences: list[str]  # the candidates `extractive` ranks, in its order
    features: list[tuple[float, ...]]  # FEATURES of each candidate
    similarity: dict[str, float]  # the previous ranker's score of each candidate
    # IDF of each of the question's content words over the collection, and its chunk count
    idf: dict[str, float] = field(default_factory=dict)
    chunks: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # the ranker under test, per sentence
    cache: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # The question as the service read it (focus, then spelling); "": collected before spelling.
    read: str = ""
    # How many of `hits` an answer may quote (--answer-passages, measured and not shipped:
    # docs/evaluation.md); 0: all of them, as the service does.
    answer_passages: int = 0

    @property
    def quotable_hits(self) -> list[Hit]:
        """The passages an answer may quote."""
        return self.hits[: self.answer_passages or None]

    @property
    def asked(self) -> str:
        """The question as the service reads it (`RagService.read`): a long message's asking
        sentence, its misspelt words corrected; a collection from before spelling, `focus` only."""
        return self.read or focus(self.item["question"])

    def labels(self) -> list[int]:
        gold = self.item["answers"] if self.item["answerable"] else []
        return [int(bool(gold) and is_correct(s, gold)) for s in self.sentences]


def load_corpora(names: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """eval/corpora.json: name -> {"paths": [...], "questions": file}; paths relative to ROOT."""
    spec = json.loads((ROOT / "eval" / "corpora.json").read_text())
    chosen = {k: v for k, v in spec.items() if not names or k in names}
    # A missing corpus ingested nothing and scored 0 on every question, with no word of why.
    missing = [p for v in chosen.values() for p in v["paths"] if not (ROOT / p).exists()]
    if missing:
        sys.exit(
            f"missing corpus files: {', '.join(missing)} (debian-policy: `apt-get install"
            " debian-policy`; the others are in eval/corpora/, docs/evaluation.md)"
        )
    return chosen


POLICY = Policy()


def candidates(question: str, hits: list[Hit]) -> list[str]:
    """The sentences `extractive` would rank for this question, found by asking it."""
    seen: list[str] = []

    def record(_q: str, sentences: list[str]) -> list[float]:
        seen.extend(sentences)
        return [0.0] * len(sentences)

    extractive(question, hits, [h.score for h in hits], POLICY, record, None)
    return list(dict.fromkeys(seen))


class Reader:
    """Reads questions as the service does, over one collection: focus, spelling, retrieval,
    candidate sentences and their features."""

    def __init__(
        self,
        data: Path,
        name: str,
        embedder: Embedder,
        judge: Answerability,
        answer_passages: int = 0,
    ) -> None:
        from rag_core.settings import load_settings
        from rag_server.rag import assemble

        base = load_settings(data_dir=data, grounding={"scorer": "similarity"})
        self.name = name
        self.settings = base.model_copy(update={"collection": f"eval-{name}"})
        self.judge = judge
        self.answer_passages = answer_passages
        self.rag = assemble(self.settings, embedder, NoModel())

    def read(self, item: dict[str, Any]) -> Question:
        from rag_server.answerability import sentence_passages

        corpus = self.rag.catalog.get()
        snapshot = corpus.keyword.current()
        question = self.rag.service.read(item["question"], snapshot, UNRESTRICTED)
        top_k = self.settings.retrieval.top_k
        hits = corpus.retriever.retrieve(question, top_k, Filters(), {}, snapshot)
        sentences = candidates(question, hits[: self.answer_passages or None])
        passages = sentence_passages(hits)
        features = self.judge.features(question, sentences, [passages[s] for s in sentences])
        similar = (
            self.rag.service.similarity_scorer(question, snapshot)(question, sentences)
            if sentences
            else []
        )
        idf = snapshot.idf(UNRESTRICTED)
        return Question(
            self.name,
            item,
            hits,
            sentences,
            features,
            dict(zip(sentences, similar, strict=True)),
            {w: idf(w) for w in content_words(question)},
            len(snapshot.chunks),
            read=question,
            answer_passages=self.answer_passages,
        )


def judge_for(embedder: Embedder) -> Answerability:
    """The answer model with a zero combiner: features are collected, the combiner fitted later."""
    from rag_server.answer_scorer import AnswerScorer
    from rag_server.answerability import FEATURES

    return Answerability(AnswerScorer.load(), embedder, Combiner((0.0,) * len(FEATURES), 0.0))


_SLIPPABLE = re.compile(r"\b[a-z]{5,}\b")


def slip(question: str, rng: random.Random) -> str:
    """The question with one typing slip in one of its lower-case words of five letters or more:
    a letter dropped, two swapped, replaced or added (a swap at the last letter adds one), never
    at the first letter."""
    words = [m for m in _SLIPPABLE.finditer(question) if m.group(0) not in STOPWORDS]
    if not words:
        return question
    found = rng.choice(words)
    word, i = found.group(0), rng.randrange(1, len(found.group(0)))
    kind = rng.choice(["delete", "swap", "replace", "insert"])
    if kind == "delete":
        typed = word[:i] + word[i + 1 :]
    elif kind == "swap" and i < len(word) - 1:
        typed = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == "replace":
        typed = word[:i] + rng.choice(string.ascii_lowercase.replace(word[i], "")) + word[i + 1 :]
    else:
        typed = word[:i] + rng.choice(string.ascii_lowercase) + word[i:]
    return question[: found.start()] + typed + question[found.end() :]


def collect(
    corpora: dict[str, dict[str, Any]],
    data: Path,
    typos: int | None = None,
    answer_passages: int = 0,
) -> list[Question]:
    """Ingest each corpus (a no-op when --data holds it already) and read its questions; with
    `typos` (a seed), each question, focused, with one typing slip (`slip`); with
    `answer_passages`, candidates from that many of the retrieved passages only."""
    from ingest.build import build_pipeline
    from rag_core.embedding import load_embedder
    from rag_core.settings import load_settings

    base = load_settings(data_dir=data)
    embedder = load_embedder(base.embedder, base.models_home)
    judge = judge_for(embedder)
    rng = None if typos is None else random.Random(typos)
    out: list[Question] = []
    for name, spec in corpora.items():
        began = time.perf_counter()
        settings = base.model_copy(update={"collection": f"eval-{name}"})
        build_pipeline(settings, embedder).run([ROOT / p for p in spec["paths"]])
        print(f"{name}: ingested in {time.perf_counter() - began:.0f}s", file=sys.stderr)
        reader = Reader(data, name, embedder, judge, answer_passages)
        items = [json.loads(x) for x in (ROOT / spec["questions"]).read_text().splitlines() if x]
        began = time.perf_counter()
        if rng is not None:
            items = [dict(i, question=slip(focus(i["question"]), rng)) for i in items]
        out.extend(reader.read(item) for item in items)
        per = (time.perf_counter() - began) / max(1, len(items))
        print(f"{name}: {len(items)} questions, {per:.2f}s each", file=sys.stderr)
    return out


def decide(q: Question, floor: float, scores: dict[str, float]) -> Verified:
    """What the service answers at this floor, before generation: refuse without a relevant
    passage, else quote the best sentences scoring at least `floor`."""
    relevance = [h.score for h in q.hits]
    if max(relevance, default=-1.0) < POLICY.min_relevance:
        return Verified(POLICY.refusal, "insufficient_evidence")
    score: Score = lambda _q, ss: [scores.get(s, -9.0) for s in ss]  # noqa: E731
    hits = q.quotable_hits
    return extractive(q.asked, hits, relevance[: len(hits)], POLICY, score, floor)


def legacy_floor(hits: list[Hit]) -> float:
    """The previous two-level gate (0.56 passage cosine; quotes 1.15, or 1.25 when weak)."""
    return 1.25 if max((h.score for h in hits), default=-1.0) < 0.56 else 1.15


def outcome(q: Question, ranker: str, floor: float | None) -> dict[str, Any]:
    """The answer at this floor. It changes only with how many candidates reach the floor (the
    ranking itself does not move), so it is computed once per count and reused across the sweep."""
    scores = q.similarity if ranker == "similarity" else q.scores
    floor = legacy_floor(q.hits) if floor is None else floor
    ranked = sorted(scores.values(), reverse=True)
    admitted = min(sum(1 for v in ranked if v >= floor), 8)
    key = (ranker, admitted)
    if key not in q.cache:
        q.cache[key] = _outcome(q, scores, ranked[admitted - 1] if admitted else floor)
    return q.cache[key]


def _outcome(q: Question, scores: dict[str, float], floor: float) -> dict[str, Any]:
    verified = decide(q, floor, scores)
    answered = verified.status != "insufficient_evidence"
    pages = set(q.item.get("pages") or [])
    cited = {c.hit.chunk.page for c in verified.citations}
    correct = (
        bool(q.item["answerable"]) and answered and is_correct(verified.answer, q.item["answers"])
    )
    return {
        "answered": answered,
        "correct": correct,
        "page_ok": (bool(pages & cited) if pages else None) if correct else None,
    }


REFUSED = {"answered": False, "correct": False, "page_ok": None}


def metrics(qs: list[Question], ranker: str, floor: float | None) -> dict[str, Any]:
    return summary([(q, outcome(q, ranker, floor)) for q in qs])


def gated(q: Question, runner_up: float, chance: float | None, threshold: float) -> dict[str, Any]:
    """What the service would answer behind the question gate: refuse below `threshold`, else
    quote the best candidate, and the runner-up when it reaches `runner_up`."""
    if chance is None or chance < threshold or not q.scores:
        return REFUSED
    return outcome(q, "model", min(max(q.scores.values()), runner_up))


def gate_metrics(
    qs: list[Question], runner_up: float, chances: dict[str, float | None], threshold: float
) -> dict[str, Any]:
    return summary([(q, gated(q, runner_up, chances[question_id(q)], threshold)) for q in qs])


def rates(rows: list[tuple[Question, dict[str, Any]]]) -> dict[str, list[bool]]:
    """Each reported rate as the per-question outcomes it is the share of."""
    answerable = [o for q, o in rows if q.item["answerable"]]

    def refused(kind: str) -> list[bool]:
        return [not o["answered"] for q, o in rows if q.item.get("kind") == kind]

    return {
        "accuracy": [o["correct"] for o in answerable],
        "false_abstention": [not o["answered"] for o in answerable],
        "abstention_adjacent": refused("adjacent"),
        "abstention_adversarial": refused("adversarial"),
        "abstention": [not o["answered"] for q, o in rows if not q.item["answerable"]],
        "page_ok": [o["page_ok"] for o in answerable if o["page_ok"] is not None],
    }


def summary(rows: list[tuple[Question, dict[str, Any]]]) -> dict[str, Any]:
    return {"questions": len(rows), **{k: percent(v) for k, v in rates(rows).items()}}


INTERVAL_KEYS = ("accuracy", "false_abstention", "abstention_adjacent", "abstention_adversarial")


def intervals(qs: list[Question], ranker: str, floor: float) -> dict[str, Any]:
    """The rates at this floor with their 95% Wilson intervals, and the counts behind them."""
    flags = rates([(q, outcome(q, ranker, floor)) for q in qs])
    return {
        k: {
            "value": percent(flags[k]),
            "ci": interval(flags[k]),
            "k": sum(flags[k]),
            "n": len(flags[k]),
        }
        for k in INTERVAL_KEYS
    }


def choose(qs: list[Question], ranker: str, grid: list[float]) -> float:
    """The floor with the best mean accuracy over the given corpora, each weighted equally, among
    floors whose mean abstention meets both targets; when none does, the most abstaining one."""
    names = sorted({q.corpus for q in qs})

    def mean(floor: float, key: str) -> float:
        values = [metrics([q for q in qs if q.corpus == n], ranker, floor)[key] for n in names]
        kept = [v for v in values if v is not None]
        return statistics.fmean(kept) if kept else 100.0

    table = {
        f: (mean(f, "accuracy"), mean(f, "abstention_adjacent"), mean(f, "abstention_adversarial"))
        for f in grid
    }
    feasible = [
        f
        for f, (_, adj, adv) in table.items()
        if adj >= TARGET_ADJACENT and adv >= TARGET_ADVERSARIAL
    ]
    if feasible:
        return max(feasible, key=lambda f: (table[f][0], f))
    return max(
        grid,
        key=lambda f: (min(table[f][1] / TARGET_ADJACENT, table[f][2] / TARGET_ADVERSARIAL), f),
    )


def choose_own(qs: list[Question]) -> float:
    """An oracle no customer has: the floor with the best accuracy on this one corpus among those
    where it meets the targets itself (its unlabelled unanswerable questions, the adjacent
    target). It bounds what any per-corpus calibration of the ranker's scores could give."""
    best, best_accuracy = MODEL_GRID[-1], -1.0
    for f in MODEL_GRID:
        m = metrics(qs, "model", f)
        wanted = [
            (m["abstention_adjacent"], TARGET_ADJACENT),
            (m["abstention_adversarial"], TARGET_ADVERSARIAL),
        ]
        if m["abstention_adjacent"] is None and m["abstention_adversarial"] is None:
            wanted = [(m["abstention"], TARGET_ADJACENT)]
        if all(v is None or v >= t for v, t in wanted) and (m["accuracy"] or 0.0) > best_accuracy:
            best, best_accuracy = f, m["accuracy"] or 0.0
    return best


# Penalties tried for a sentence that states the opposite of what the question asks
# (rag_server.contrast), subtracted from the answer model's logit before the combiner.
CONTRAST_GRID = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)


class ContrastPenalty:
    """Sets the contrast penalty on collected candidates: the answer model's logits as collected
    (no penalty), and which candidates contradict their question, are kept to rewrite feature 0."""

    def __init__(self, qs: list[Question]) -> None:
        from rag_server.contrast import Opposites, contradicts

        opposites = Opposites.load()
        self.raw = {question_id(q): [f[0] for f in q.features] for q in qs}
        self.flags = {
            question_id(q): [contradicts(q.asked, s, opposites) for s in q.sentences] for q in qs
        }

    def set(self, qs: list[Question], penalty: float) -> None:
        from rag_server.contrast import penalised

        for q in qs:
            key = question_id(q)
            logits = penalised(self.raw[key], self.flags[key], penalty)
            q.features = [(logit, *f[1:]) for logit, f in zip(logits, q.features, strict=True)]
            q.cache = {k: v for k, v in q.cache.items() if k[0] == "similarity"}

    def choose(self, qs: list[Question], columns: Sequence[int]) -> float:
        """The penalty with the best mean accuracy over the given corpora, each held out from
        the others in turn (combiner and floor fitted without it, as the outer loop does); ties
        go to the smaller penalty. It leaves the chosen penalty set."""
        names = sorted({q.corpus for q in qs})

        def held_out_accuracy(penalty: float) -> float:
            self.set(qs, penalty)
            accuracies = []
            for name in names:
                held = [q for q in qs if q.corpus == name]
                train = [q for q in qs if q.corpus != name]
                _, _, floor = fit_point(train, qs, columns)
                accuracies.append(metrics(held, "model", floor)["accuracy"] or 0.0)
            return statistics.fmean(accuracies)

        scores = {penalty: held_out_accuracy(penalty) for penalty in CONTRAST_GRID}
        best = max(CONTRAST_GRID, key=lambda k: (scores[k], -k))
        self.set(qs, best)
        return best


def fit_point(
    train: list[Question], qs: list[Question], columns: Sequence[int]
) -> tuple[list[float], float, float]:
    """The combiner fitted on `train`, applied to every question of `qs`, and the floor the
    threshold rule picks on `train`: one operating point, chosen without whatever else `qs`
    holds."""
    weights, bias = fit(train, columns)
    apply(qs, columns, weights, bias)
    return weights, bias, choose(train, "model", MODEL_GRID)


def fit(qs: list[Question], columns: Sequence[int]) -> tuple[list[float], float]:
    """A logistic model on the chosen feature columns; every corpus weighs the same."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    xs, ys, ws = [], [], []
    counts = {n: sum(len(q.sentences) for q in qs if q.corpus == n) for n in {q.corpus for q in qs}}
    for q in qs:
        for f, y in zip(q.features, q.labels(), strict=True):
            xs.append([f[c] for c in columns])
            ys.append(y)
            ws.append(1.0 / counts[q.corpus])
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(np.asarray(xs), np.asarray(ys), sample_weight=np.asarray(ws) * len(xs))
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])


def apply(qs: list[Question], columns: Sequence[int], weights: list[float], bias: float) -> None:
    """Each candidate's probability as the service computes it (`Answerability.probabilities`):
    the logistic model on `columns` (the service's `Combiner`), and 0 where the sentence cannot
    hold the answer asked for."""
    combiner = Combiner(tuple(weights), bias)
    for q in qs:
        q.cache = {k: v for k, v in q.cache.items() if k[0] == "similarity"}
        kind = question_type(q.asked)
        q.scores = {
            s: combiner.probability([f[c] for c in columns]) if can_answer(kind, s) else 0.0
            for s, f in zip(q.sentences, q.features, strict=True)
        }


# A question-level gate, measured and not shipped (docs/evaluation.md): a second logistic model
# over the best candidate and how rare the question's words are (IDF), deciding whether to answer.
GATE_FEATURES = (
    "best_log_odds",
    "margin",
    "best_logit",
    "rare_in_sentence",
    "rare_in_passage",
    "rare_retrieved",
    "missing_rarest",
    "top_passage",
)


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def gate_features(
    question: str,
    best: tuple[str, float, float],
    runner_up: float | None,
    hits: Sequence[Hit],
    idf: Callable[[str], float],
    chunks: int,
) -> tuple[float, ...]:
    """GATE_FEATURES: `best` is the best candidate (sentence, probability, answer-model logit),
    `runner_up` the next one's probability; `idf` weighs the question's content words over the
    `chunks` chunks the caller may read."""
    sentence, probability, logit = best
    rarity = math.log(max(chunks, 1) + 1)

    def weight(word: str) -> float:
        """IDF, but 0 for a word in no readable chunk (its IDF is above log(n + 1)): mostly a
        typo ("yeer") or a word of another vocabulary, not the one detail a question changed."""
        value = idf(word)
        return value if value < rarity else 0.0

    texts = [f"{h.chunk.title}\n{h.chunk.text}" for h in hits]
    passage = next((t for h, t in zip(hits, texts, strict=True) if sentence in h.chunk.text), "")
    retrieved = "\n".join(texts)
    in_sentence, in_passage, in_retrieved = overlap_scores(
        question, [sentence, passage, retrieved], weight
    )
    have = content_words(retrieved)
    missing = [weight(w) / rarity for w in content_words(question) if w not in have]
    top = _log_odds(probability)
    return (
        top,
        top - _log_odds(runner_up if runner_up is not None else 1e-4),
        logit,
        in_sentence,
        in_passage,
        in_retrieved,
        max(missing, default=0.0),
        max((h.score for h in hits), default=0.0),
    )


def gate_row(q: Question) -> tuple[float, ...] | None:
    """The question gate's features, from the sentence probabilities last applied (None: no
    candidate, so the service refuses before the gate)."""
    logits = {s: f[0] for s, f in zip(q.sentences, q.features, strict=True)}
    ranked = sorted(q.scores.items(), key=lambda kv: -kv[1])
    if not ranked:
        return None
    best = (ranked[0][0], ranked[0][1], logits[ranked[0][0]])
    runner_up = ranked[1][1] if len(ranked) > 1 else None
    return gate_features(q.asked, best, runner_up, q.hits, lambda w: q.idf.get(w, 0.0), q.chunks)


def fit_gate(qs: list[Question]) -> tuple[list[float], float]:
    """A logistic model of "the documents answer this question" on GATE_FEATURES; every corpus
    weighs the same."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rows = [(q, r) for q in qs if (r := gate_row(q)) is not None]
    counts = {n: sum(1 for q, _ in rows if q.corpus == n) for n in {q.corpus for q, _ in rows}}
    model = LogisticRegression(C=1.0, max_iter=3000)
    model.fit(
        np.asarray([r for _, r in rows]),
        np.asarray([int(q.item["answerable"]) for q, _ in rows]),
        sample_weight=np.asarray([len(rows) / counts[q.corpus] for q, _ in rows]),
    )
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])


def gate_chances(qs: list[Question], weights: list[float], bias: float) -> dict[str, float | None]:
    gate = Combiner(tuple(weights), bias)
    return {question_id(q): None if (r := gate_row(q)) is None else gate.probability(r) for q in qs}


def choose_gate(qs: list[Question], runner_up: float, chances: dict[str, float | None]) -> float:
    """The gate threshold with the best mean accuracy over the given corpora among those at which
    every one of them meets both abstention targets (the targets hold per corpus); when none
    does, the one whose worst corpus comes closest."""
    names = sorted({q.corpus for q in qs})
    table = {}
    for t in MODEL_GRID:
        rows = [
            gate_metrics([q for q in qs if q.corpus == n], runner_up, chances, t) for n in names
        ]
        accuracies = [r["accuracy"] for r in rows if r["accuracy"] is not None]
        accuracy = statistics.fmean(accuracies) if accuracies else 0.0
        reach = min(
            [
                r["abstention_adjacent"] / TARGET_ADJACENT
                for r in rows
                if r["abstention_adjacent"] is not None
            ]
            + [
                r["abstention_adversarial"] / TARGET_ADVERSARIAL
                for r in rows
                if r["abstention_adversarial"] is not None
            ],
            default=1.0,
        )
        table[t] = (accuracy, reach)
    feasible = [t for t, (_, reach) in table.items() if reach >= 1.0]
    if feasible:
        return max(feasible, key=lambda t: (table[t][0], t))
    return max(MODEL_GRID, key=lambda t: (table[t][1], t))


def question_gate(rest: list[Question], held: list[Question], runner_up: float) -> dict[str, Any]:
    """The gate fitted and its threshold chosen on `rest`, over the sentence probabilities last
    applied (those of the ranker whose floor is `runner_up`), reported on `held`."""
    weights, bias = fit_gate(rest)
    chances = gate_chances(rest + held, weights, bias)
    threshold = choose_gate(rest, runner_up, chances)
    return {
        "floor": f"{threshold} ({runner_up})",
        "weights": [round(w, 3) for w in weights],
        **gate_metrics(held, runner_up, chances, threshold),
    }


def hit_at(qs: list[Question], k: int, rerank: bool) -> float | None:
    """Gold document among the first k passages, in retrieval order or by best sentence score
    (with the scores last applied)."""
    found = []
    for q in qs:
        if not q.item["answerable"]:
            continue
        hits = q.hits
        if rerank:

            def best(h: Hit, q: Question = q) -> float:
                text = h.chunk.text
                return max((q.scores.get(text[a:b], 0.0) for a, b in passage_spans(h)), default=0.0)

            hits = sorted(hits, key=best, reverse=True)
        found.append(q.item["source"] in {h.chunk.source.rsplit("/", 1)[-1] for h in hits[:k]})
    return round(100 * statistics.fmean(found), 1) if found else None


def question_id(q: Question) -> str:
    return f"{q.corpus}:{q.item['id']}"


def export_pairs(qs: list[Question], out: Path, hard: int = 3, easy: int = 1) -> None:
    """Training pairs for the answer model from the evaluation corpora, one file per corpus
    (training/answer_scorer/loo.py trains leaving one corpus out): every candidate holding a gold
    string (two at most) is a positive; the negatives are the `hard` candidates the current model
    rates highest and `easy` others at random. Also each question's full candidate list, which the
    held-out model scores."""
    import random

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(13)
    for name in sorted({q.corpus for q in qs}):
        pairs, candidates = [], []
        for q in (q for q in qs if q.corpus == name):
            qid, labels = question_id(q), q.labels()
            base = {
                "question": q.asked,
                "qid": qid,
                "impossible": not q.item["answerable"],
            }
            positive = [s for s, y in zip(q.sentences, labels, strict=True) if y][:2]
            negative = sorted(
                (i for i, y in enumerate(labels) if not y), key=lambda i: -q.features[i][0]
            )
            rest = negative[hard:]
            chosen = negative[:hard] + rng.sample(rest, min(easy, len(rest)))
            pairs += [{**base, "sentence": s, "label": 1} for s in positive]
            pairs += [{**base, "sentence": q.sentences[i], "label": 0} for i in chosen]
            candidates.append({"qid": qid, "question": q.asked, "sentences": q.sentences})
        (out / f"{name}.pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
        (out / f"{name}.candidates.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in candidates)
        )
        print(f"{name}: {len(pairs)} pairs, {len(candidates)} questions", file=sys.stderr)


def replace_logits(qs: list[Question], reading: Callable[[Question], list[float]]) -> None:
    """Replace the answer model's logit (feature 0) of every candidate by another reading of it."""
    for q in qs:
        values = reading(q)
        q.features = [(v, *f[1:]) for v, f in zip(values, q.features, strict=True)]
        q.cache = {}


def use_logits(qs: list[Question], path: Path) -> None:
    """The logits in `path` ({question id: [logit per candidate]}): the held-out models' readings
    (training/answer_scorer/loo.py), so each corpus is judged by a model that never saw it."""
    logits = json.loads(path.read_text())
    replace_logits(qs, lambda q: logits[question_id(q)])


def use_scorer(qs: list[Question], directory: Path) -> None:
    """Another exported answer model (a folder like rag_server/models/answer_scorer) reads every
    collected candidate, so a retrained model is judged without ingesting and retrieving again."""
    from rag_server.answer_scorer import AnswerScorer

    scorer = AnswerScorer.load(directory)
    replace_logits(qs, lambda q: scorer.logits(q.asked, q.sentences))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpora", help="comma-separated names (default: all in eval/corpora.json)"
    )
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data" / "suite")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--write-combiner", action="store_true", help="ship the all-corpora fit")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the last run's retrieval and features"
    )
    parser.add_argument(
        "--typos",
        type=int,
        metavar="SEED",
        help="one typing slip in each question (collect into its own --data)",
    )
    parser.add_argument(
        "--answer-passages",
        type=int,
        default=0,
        metavar="N",
        help="answers quote only the best N retrieved passages (measured, not shipped; collect"
        " into its own --data)",
    )
    parser.add_argument("--export-pairs", type=Path, help="write training pairs here and stop")
    parser.add_argument(
        "--logits",
        type=Path,
        help="answer-model logits per question (training/answer_scorer/loo.py)",
    )
    parser.add_argument(
        "--scorer", type=Path, help="score the candidates with this exported answer model"
    )
    args = parser.parse_args()
    from rag_server.answerability import FEATURES

    corpora = load_corpora(args.corpora.split(",") if args.corpora else None)
    cache = args.data / "collected.pickle"
    if args.reuse and cache.exists():
        qs = [q for q in pickle.loads(cache.read_bytes()) if q.corpus in corpora]
        # The candidates were chosen at collection: another count needs another collection.
        collected = {q.answer_passages for q in qs} - {args.answer_passages}
        if collected:
            was, wanted = collected.pop() or "all", args.answer_passages or "all"
            sys.exit(
                f"{cache} holds candidates from {was} passages, not {wanted}:"
                " collect into another --data"
            )
    else:
        qs = collect(corpora, args.data, args.typos, args.answer_passages)
        cache.write_bytes(pickle.dumps(qs))
    if args.export_pairs:
        export_pairs(qs, args.export_pairs)
        return
    if args.logits:
        use_logits(qs, args.logits)
    if args.scorer:
        use_scorer(qs, args.scorer)
    names = list(corpora)
    every = list(range(len(FEATURES)))
    contrast = ContrastPenalty(qs)  # after any other reading has replaced the logits
    rankers = {
        "combined": every,
        "combined, no contrast penalty": every,
        "answer model alone": [0],
        "cheap features alone": every[1:],
    }
    report: dict[str, Any] = {
        "features": FEATURES,
        "corpora": {},
        "targets": {"adjacent": TARGET_ADJACENT, "adversarial": TARGET_ADVERSARIAL},
    }
    held_intervals: dict[str, dict[str, Any]] = {}
    for name in names:
        held = [q for q in qs if q.corpus == name]
        rest = [q for q in qs if q.corpus != name]
        row: dict[str, Any] = {}
        gated_row: dict[str, Any] = {}
        own_row: dict[str, Any] = {}
        for label, columns in rankers.items():
            # Only the shipped ranker takes the penalty, chosen without the held-out corpus.
            penalty = contrast.choose(rest, columns) if label == "combined" else 0.0
            contrast.set(qs, penalty)
            weights, bias, floor = fit_point(rest, qs, columns)
            row[label] = {
                "floor": floor,
                "contrast_penalty": penalty,
                "weights": [round(w, 3) for w in weights],
                **metrics(held, "model", floor),
                "hit_at_1": hit_at(held, 1, True),
                "hit_at_5": hit_at(held, 5, True),
            }
            if label == "combined":  # the gate reads the shipped ranker's probabilities
                gated_row = question_gate(rest, held, floor)
                held_intervals[name] = intervals(held, "model", floor)
                own = choose_own(held)
                own_row = {"floor": own, **metrics(held, "model", own)}
        row["question gate (not shipped)"] = gated_row
        row["own best floor (oracle, not a default)"] = own_row
        row["previous defaults"] = {"floor": "0.56/1.15/1.25", **metrics(held, "similarity", None)}
        refit = choose(rest, "similarity", SIMILARITY_GRID)
        row["cosine + IDF refit"] = {"floor": refit, **metrics(held, "similarity", refit)}
        row["retrieval"] = {"hit_at_1": hit_at(held, 1, False), "hit_at_5": hit_at(held, 5, False)}
        report["corpora"][name] = row
        print(name, json.dumps(row), file=sys.stderr)
    mean_row: dict[str, Any] = {}
    for k in INTERVAL_KEYS:
        value, ci = mean_interval([(c[k]["k"], c[k]["n"]) for c in held_intervals.values()])
        mean_row[k] = {"value": value, "ci": ci}
    report["held_out_intervals"] = {**held_intervals, "mean of held-out rows": mean_row}
    penalty = contrast.choose(qs, every)
    weights, bias, shipped = fit_point(qs, qs, every)
    report["shipped"] = {
        "floor": shipped,
        "weights": weights,
        "bias": bias,
        "contrast_penalty": penalty,
    }
    report["pooled_at_shipped"] = metrics(qs, "model", shipped)
    report["curve"] = [{"floor": f, **metrics(qs, "model", f)} for f in MODEL_GRID[::3]]
    if args.write_combiner:
        from rag_server.answer_scorer import PACKAGED

        (PACKAGED / "combiner.json").write_text(
            json.dumps(
                {
                    "features": list(FEATURES),
                    "weights": weights,
                    "bias": bias,
                    "contrast_penalty": penalty,
                    "answer_threshold": shipped,
                    "fitted_on": names,
                    "made_by": "bench/grounding_suite.py --write-combiner",
                },
                indent=1,
            )
            + "\n"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grounding_suite.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "grounding_suite.md").write_text(markdown(report))
    plot(report, args.out / "grounding_curve.png")
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    keys = [
        "accuracy",
        "false_abstention",
        "abstention_adjacent",
        "abstention_adversarial",
        "page_ok",
    ]
    lines = [
        "| corpus (held out) | ranker | floor | " + " | ".join(keys) + " | hit@1 | hit@5 |",
        "|---|---|---|" + "---|" * (len(keys) + 2),
    ]
    for name, row in report["corpora"].items():
        for label, m in row.items():
            if label == "retrieval":
                m = {**m, "floor": "–"}
            cells = " | ".join("–" if m.get(k) is None else str(m[k]) for k in keys)
            lines.append(
                f"| {name} | {label} | {m['floor']} | {cells} | {m.get('hit_at_1', '–')} "
                f"| {m.get('hit_at_5', '–')} |"
            )
    pooled = report["pooled_at_shipped"]
    labels = list(dict.fromkeys(label for row in report["corpora"].values() for label in row))
    for label in (x for x in labels if x != "retrieval"):
        rows = [row[label] for row in report["corpora"].values() if label in row]
        means = []
        for k in keys:
            values = [m[k] for m in rows if m.get(k) is not None]
            means.append(f"{statistics.fmean(values):.1f}" if values else "–")
        lines.append(f"| mean of held-out rows | {label} | | {' | '.join(means)} | | |")
    lines += [
        "",
        f"Shipped (fitted on all corpora): floor {report['shipped']['floor']}; pooled there: "
        + ", ".join(f"{k} {pooled[k]}" for k in keys),
        "",
        "The combined rows with 95% intervals (Wilson; the mean's by normal approximation):",
        "",
        "| corpus (held out) | " + " | ".join(INTERVAL_KEYS) + " |",
        "|---|" + "---|" * len(INTERVAL_KEYS),
    ]
    for name, cells in report.get("held_out_intervals", {}).items():
        shown = []
        for k in INTERVAL_KEYS:
            c = cells[k]
            value = "" if c["value"] is None else f"{c['value']} "
            ci = f"[{c['ci'][0]}-{c['ci'][1]}]" if c["ci"] else "–"
            count = f" of {c['n']}" if c.get("n") else ""  # the mean of the corpora has none
            shown.append(f"{value}{ci}{count}")
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report["curve"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c["abstention"] for c in curve], [c["accuracy"] for c in curve], marker=".")
    for c in curve[::4]:
        ax.annotate(str(c["floor"]), (c["abstention"], c["accuracy"]), fontsize=7)
    ax.set_xlabel("abstention on unanswerable questions (%)")
    ax.set_ylabel("accuracy on answerable questions (%)")
    ax.set_title("All corpora pooled: answer-model floor swept")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
