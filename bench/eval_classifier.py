"""Score the call classifier alone (no LLM) on labelled call sets, in seconds.

The classifier is the label source by default (AnalysisSettings.label_from = "classifier"), so its
accuracy is the category/sub-category accuracy of the stage on calls that are not empty (Empty Call is
a rule, Uncertain is a classifier label). This reads the customer's words of each script exactly as the
analyser does (``classifier_text``) and compares training data and feature choices side by side:

    python -m bench.eval_classifier                      # every feature set on bench/devset and bench/holdout
    python -m bench.eval_classifier --sets bench/holdout --features tfidf,both --seed-calls off

Training data is always the taxonomy's examples plus (unless ``--seed-calls off``) the seed calls files
(``analysis.seed_calls_files``), leaving out the calls of the set being scored (the labelled sets are
seed calls too, see bench/seed_from_sets.py): every number here is on calls the classifier never saw.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.eval_analysis import Script, corrected_classifier, load_devset, script_to_record
from pipeline.analysis.analyser import turn_views
from pipeline.analysis.classifier import CallClassifier, classifier_text
from pipeline.analysis.outcome import apply_outcomes
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
EMPTY, UNNECESSARY = "Empty Call", "Unnecessary Call"


def flat_label(script: Script) -> str:
    sub = script.labels.get("subcategory")
    return str(sub) if script.labels["category"] == UNNECESSARY and sub else str(script.labels["category"])


def evaluate(classifier: CallClassifier, taxonomy: Taxonomy, scripts: Sequence[Script],
             outcomes: bool = True) -> dict[str, Any]:
    """Accuracy over non-empty calls: flat label, category, sub-category (on Unnecessary Call calls)."""
    rows = []
    for script in scripts:
        if script.labels["category"] == EMPTY:
            continue
        turns = turn_views(script_to_record(script).turns)
        probs = classifier.predict(classifier_text(turns))
        predicted = max(probs, key=lambda k: probs[k]) if probs else ""
        decided = apply_outcomes(taxonomy.outcomes, turns, probs) if outcomes else None
        if decided is not None:
            predicted = decided[0]
        category, _ = taxonomy.split(predicted) if predicted else ("", None)
        rows.append((script, flat_label(script), predicted, category))
    n = len(rows)
    unnecessary = [r for r in rows if r[0].labels["category"] == UNNECESSARY]
    confusions = Counter(f"{want} -> {got}" for _, want, got, _ in rows if want != got)
    return {
        "calls": n,
        "label_accuracy": sum(want == got for _, want, got, _ in rows) / n if n else 0.0,
        "category_accuracy": sum(cat == s.labels["category"] for s, _, _, cat in rows) / n if n else 0.0,
        "subcategory_accuracy": (sum(want == got for _, want, got, _ in unnecessary) / len(unnecessary)
                                 if unnecessary else 0.0),
        "confusions": dict(confusions.most_common(12)),
    }


def learning(sets: dict[str, list[Script]], weights: Sequence[float]) -> dict[str, Any]:
    """Reviewer corrections of one set (recorded with record_correction, as the API does) retrain the
    classifier, which then labels the other set: does accuracy grow with use on calls it never saw?"""
    result: dict[str, Any] = {}
    names = list(sets)
    for source, target in [(a, b) for a in names for b in names if a != b]:
        reviewed = [s for s in sets[source] if s.labels["category"] != EMPTY]
        for weight in weights:
            with tempfile.TemporaryDirectory() as tmp:
                settings = Settings(home=Path(tmp), analysis={"classifier_correction_weight": weight,
                                                              "seed_calls_leave_out": [f"{source}/", f"{target}/"]})
                taxonomy = Taxonomy.load(settings.analysis.taxonomy_file)
                classifier = corrected_classifier(reviewed, settings.home, taxonomy, settings.analysis)
                scored = evaluate(classifier, taxonomy, sets[target])
                result[f"{len(reviewed)} corrections from {source} (weight {weight}) -> {target}"] = {
                    k: scored[k] for k in ("label_accuracy", "category_accuracy", "subcategory_accuracy")}
    return result


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="bench/devset,bench/holdout", help="comma-separated folders of scripts")
    parser.add_argument("--features", default="tfidf,embeddings,both")
    parser.add_argument("--seed-calls", choices=["on", "off", "both"], default="both")
    parser.add_argument("--outcomes", choices=["on", "off", "both"], default="both",
                        help="apply the taxonomy's outcome rules (a booking decides Potential Customer)")
    parser.add_argument("--learning", default="0.2,1.0",
                        help="correction weights for the cross-set learning check ('' to skip)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "eval_classifier.json"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    sets = {Path(s).name: load_devset(REPO / s) for s in args.sets.split(",") if (REPO / s).is_dir()}
    seed_choices = {"on": [True], "off": [False], "both": [False, True]}[args.seed_calls]
    report: dict[str, Any] = {}
    for features in args.features.split(","):
        for with_seed_calls in seed_choices:
            for with_outcomes in {"on": [True], "off": [False], "both": [False, True]}[args.outcomes]:
                name = (f"{features}{' + seed calls' if with_seed_calls else ''}"
                        f"{' + outcome rules' if with_outcomes else ''}")
                report[name] = {}
                for set_name, scripts in sets.items():
                    with tempfile.TemporaryDirectory() as tmp:
                        analysis: dict[str, Any] = {"classifier_features": features,
                                                    "seed_calls_leave_out": [f"{set_name}/"]}
                        if not with_seed_calls:
                            analysis["seed_calls_files"] = []
                        settings = Settings(home=Path(tmp), analysis=analysis)
                        taxonomy = Taxonomy.load(settings.analysis.taxonomy_file)
                        classifier = CallClassifier.from_settings(settings.home, taxonomy, settings.analysis)
                        model = classifier.train([])
                        report[name]["trained_on"] = model.n_seed
                        report[name][set_name] = evaluate(classifier, taxonomy, scripts, with_outcomes)
    print("| training | " + " | ".join(f"{s} label / category / sub" for s in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for name, result in report.items():
        if name == "learning":
            continue
        cells = [f"{result[s]['label_accuracy']:.0%} / {result[s]['category_accuracy']:.0%} / "
                 f"{result[s]['subcategory_accuracy']:.0%}" for s in sets]
        print(f"| {name} (up to {result['trained_on']} examples) | " + " | ".join(cells) + " |")
    if args.learning and len(sets) > 1:
        report["learning"] = learning(sets, [float(w) for w in args.learning.split(",")])
        print("\nLearning from reviewer corrections (tfidf + seed calls + outcome rules):")
        for name, scored in report["learning"].items():
            print(f"  {name}: label {scored['label_accuracy']:.0%}, category {scored['category_accuracy']:.0%}, "
                  f"sub-category {scored['subcategory_accuracy']:.0%}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nfull report (with confusions): {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
