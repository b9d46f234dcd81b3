"""Fit the sentiment calibration (pipeline/data/sentiment_calibration.json) on labelled calls.

Input: eval_analysis reports run with the LLM's raw scores, i.e.

    python -m bench.eval_analysis --devset bench/devset --out bench/out/raw_dev.json --analysis \\
        '{"sentiment_cue_weight": 0, "sentiment_thresholds": {}, "sentiment_calibration_file": null}'

(each prediction's customer-end and agent scores are then the LLM's own P(positive) - P(negative)),
paired with the scripts they scored. Features are computed here from the scripts (sentiment_model.py).

Every set is also scored by a model fitted on the OTHER sets only (the number to trust), next to the
thresholds approach (LLM score plus closing-turn cues, thresholds fitted the same way). ``--write``
fits on all given sets and writes the calibration for the LLM and prompt version of the reports:

    python -m bench.fit_sentiment bench/out/raw_dev.json=bench/devset \\
        bench/out/raw_holdout.json=bench/holdout --write pipeline/data/sentiment_calibration.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.eval_analysis import load_devset, script_to_record
from pipeline.analysis.analyser import turn_views
from pipeline.analysis.prompts import Prompt
from pipeline.analysis.sentiment import ClosingCues, label_of
from pipeline.analysis.sentiment_model import (
    AGENT_FEATURES,
    CUSTOMER_FEATURES,
    AgentManner,
    LinearModel,
    SentimentCalibration,
    agent_features,
    customer_features,
    load_cues,
)
from pipeline.settings import Settings

C = 0.3  # regularisation: measured across the two labelled sets (0.1-3 within a few points)


@dataclass
class Example:
    customer: list[float]
    agent: list[float]
    customer_label: str
    agent_label: str
    llm_end: float
    cue: float


def examples_of(report: dict[str, Any], scripts_dir: Path, cues: ClosingCues, manner: AgentManner) -> list[Example]:
    predictions = next(iter(report["details"].values()))["predictions"]
    by_id = {p["id"]: p for p in predictions}
    out = []
    for script in load_devset(scripts_dir):
        pred = by_id.get(script.id)
        if pred is None or script.labels["category"] == "Empty Call":
            continue  # empty calls are neutral by rule
        turns = turn_views(script_to_record(script).turns)
        llm_end, llm_agent = float(pred["sentiment_probs"]["customer_end"]), float(pred["sentiment_probs"]["agent"])
        out.append(Example(customer_features(turns, llm_end, cues), agent_features(turns, llm_agent, manner),
                           str(script.labels["customer_sentiment_end"]), str(script.labels["agent_sentiment"]),
                           llm_end, cues.score(turns)[0]))
    return out


def fit(rows: Sequence[list[float]], labels: Sequence[str], features: Sequence[str]) -> LinearModel:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
    model.fit(rows, labels)
    return LinearModel(tuple(str(c) for c in model.classes_), tuple(features),
                       tuple(tuple(float(v) for v in row) for row in model.coef_),
                       tuple(float(v) for v in model.intercept_))


def accuracy(model: LinearModel, rows: Sequence[list[float]], labels: Sequence[str]) -> float:
    hits = 0
    for x, want in zip(rows, labels, strict=True):
        probs = model.probabilities(x)
        hits += max(probs, key=lambda k: probs[k]) == want
    return hits / len(rows) if rows else 0.0


def threshold_fit(train: Sequence[Example]) -> tuple[float, float, float]:
    grid = [x / 20 for x in range(-19, 20)]
    return max(((w, lo, hi) for w in (0.0, 0.2, 0.4, 0.6) for lo, hi in itertools.product(grid, grid) if lo < hi),
               key=lambda p: (threshold_accuracy(train, *p), -p[0]))


def threshold_accuracy(rows: Sequence[Example], weight: float, low: float, high: float) -> float:
    ok = sum(label_of(max(-1.0, min(1.0, e.llm_end + weight * e.cue)), low, high) == e.customer_label for e in rows)
    return ok / len(rows) if rows else 0.0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="REPORT.json=SCRIPTS_DIR")
    parser.add_argument("--write", default="", help="write the calibration fitted on all sets here")
    args = parser.parse_args(list(argv) if argv is not None else None)
    settings = Settings()
    cues, manner = load_cues(settings.analysis.sentiment_cues_file)  # type: ignore[arg-type]
    sets: dict[str, list[Example]] = {}
    model_name = ""
    for spec in args.sets:
        report_path, scripts = spec.split("=", 1)
        report = json.loads(Path(report_path).read_text(encoding="utf-8"))
        sets[Path(scripts).name] = examples_of(report, Path(scripts), cues, manner)
        model_name = next(iter(report["results"])).split(":", 1)[1]

    shipped = settings.analysis.sentiment_calibration_file
    current = SentimentCalibration.load(shipped) if shipped is not None and Path(shipped).exists() else None
    summary: dict[str, Any] = {}
    for name, rows in sets.items():
        others = [e for other, more in sets.items() if other != name for e in more]
        line: dict[str, Any] = {"calls": len(rows)}
        if others:
            customer = fit([e.customer for e in others], [e.customer_label for e in others], CUSTOMER_FEATURES)
            agent = fit([e.agent for e in others], [e.agent_label for e in others], AGENT_FEATURES)
            line["customer_end_calibrated"] = accuracy(customer, [e.customer for e in rows],
                                                       [e.customer_label for e in rows])
            line["agent_calibrated"] = accuracy(agent, [e.agent for e in rows], [e.agent_label for e in rows])
            line["customer_end_thresholds"] = threshold_accuracy(rows, *threshold_fit(others))
        line["customer_end_llm_alone"] = threshold_accuracy(rows, 0.0, -0.25, 0.25)
        if current is not None:  # the calibration shipped now, for comparison (it may have seen this set)
            line["customer_end_shipped"] = accuracy(current.customer, [e.customer for e in rows],
                                                    [e.customer_label for e in rows])
            line["agent_shipped"] = accuracy(current.agent, [e.agent for e in rows], [e.agent_label for e in rows])
        summary[name] = line
        print(f"{name} ({len(rows)} non-empty calls), fitted on the other sets: " + ", ".join(
            f"{k} {v:.0%}" for k, v in line.items() if k != "calls"))

    if args.write:
        everything = [e for rows in sets.values() for e in rows]
        prompt = Prompt.load(settings.analysis.prompts_dir, settings.analysis.prompt)
        calibration = SentimentCalibration(
            model=model_name, prompt_version=prompt.version,
            customer=fit([e.customer for e in everything], [e.customer_label for e in everything], CUSTOMER_FEATURES),
            agent=fit([e.agent for e in everything], [e.agent_label for e in everything], AGENT_FEATURES),
            trained_on={"sets": {k: len(v) for k, v in sets.items()}, "C": C, "cross_set_check": summary},
        )
        Path(args.write).write_text(calibration.to_json() + "\n", encoding="utf-8")
        print(f"wrote {args.write} for {model_name} / {prompt.version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
