"""Fit the end-of-call customer sentiment settings on labelled calls, and check them on other calls.

Input: eval_analysis reports run with ``--analysis '{"sentiment_cue_weight": 0, "sentiment_thresholds": {}}'``
(so each prediction's end score is the LLM's own P(positive) - P(negative)) and the scripts they scored.
The closing-turn cue score is computed here from the scripts, so a grid over the cue weight and the two
thresholds costs nothing. The fit is done on the ``--fit`` sets only and reported on every set:

    python -m bench.fit_sentiment --fit bench/out/raw_dev.json=bench/devset \\
        --check bench/out/raw_holdout.json=bench/holdout
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.eval_analysis import load_devset, script_to_record
from pipeline.analysis.analyser import turn_views
from pipeline.analysis.sentiment import ClosingCues
from pipeline.settings import Settings

Row = tuple[float, float, str]  # LLM score, cue score, true label


def rows_of(report_path: Path, devset: Path, cues: ClosingCues) -> list[Row]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    predictions = next(iter(report["details"].values()))["predictions"]
    by_id = {p["id"]: p for p in predictions}
    rows = []
    for script in load_devset(devset):
        pred = by_id.get(script.id)
        if pred is None or script.labels["category"] == "Empty Call":
            continue  # empty calls are neutral by rule
        cue, _ = cues.score(turn_views(script_to_record(script).turns))
        rows.append((float(pred["sentiment_probs"]["customer_end"]), cue, str(script.labels["customer_sentiment_end"])))
    return rows


def accuracy(rows: Sequence[Row], weight: float, low: float, high: float) -> float:
    ok = 0
    for llm, cue, truth in rows:
        score = max(-1.0, min(1.0, llm + weight * cue))
        label = "positive" if score >= high else "negative" if score <= low else "neutral"
        ok += label == truth
    return ok / len(rows) if rows else 0.0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="append", required=True, help="REPORT.json=SCRIPTS_DIR (repeatable)")
    parser.add_argument("--check", action="append", default=[], help="REPORT.json=SCRIPTS_DIR (repeatable)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    cues = ClosingCues.load(Settings().analysis.sentiment_cues_file)  # type: ignore[arg-type]

    def load(specs: Sequence[str]) -> dict[str, list[Row]]:
        out = {}
        for spec in specs:
            report, scripts = spec.split("=", 1)
            out[Path(scripts).name] = rows_of(Path(report), Path(scripts), cues)
        return out

    fit, check = load(args.fit), load(args.check)
    fit_rows = [r for rows in fit.values() for r in rows]
    grid = [x / 20 for x in range(-19, 20)]
    best = max(
        ((w, lo, hi) for w in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8) for lo, hi in itertools.product(grid, grid)
         if lo < hi),
        # Ties go to the smallest cue weight and the most symmetric, central thresholds.
        key=lambda p: (round(accuracy(fit_rows, *p), 6), -p[0], -abs(p[1] + p[2]), -(p[2] - p[1])),
    )
    print(f"fitted on {', '.join(fit)} ({len(fit_rows)} calls): cue weight {best[0]}, thresholds "
          f"({best[1]}, {best[2]})")
    for name, rows in {**fit, **check}.items():
        print(f"  {name}: LLM alone, symmetric (-0.25, 0.25): {accuracy(rows, 0.0, -0.25, 0.25):.0%}; "
              f"fitted: {accuracy(rows, *best):.0%} ({len(rows)} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
