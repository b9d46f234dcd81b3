"""Write the classifier's seed calls from the bench's labelled sets (``pipeline/data/seed_calls_sets.yaml``).

The hand-written seed calls (``seed_calls.yaml``) come from one author and one kind of business; a
classifier trained on them alone labelled calls of other authors and sectors 80-86% right. The bench's
sets were written by six different authors (most of them from the QA rubric alone) for many kinds of
companies, in English and Turkish, so their calls are the broadest training text the project has.
Each call becomes the classifier's view of it (the customer's words and the agent's, as ``classifier_text`` reads a
call) with its flat label and a ``source`` ("holdout5/C-001"), so a bench scoring a set leaves that
set out of training (``analysis.seed_calls_leave_out``; eval_classifier and eval_rubric do it by
themselves). Empty Calls are a rule, not a classifier label, and are skipped.

    python -m bench.seed_from_sets [--sets bench/devset,...] [--out pipeline/data/seed_calls_sets.yaml]

A set that must stay unseen (the next held-out set) is never listed here. Sets D and E (bench/holdout6,
holdout7) are listed since both were scored as held-out sets: with D alone the other sets scored with themselves
left out fell (set C category 93% -> 88%), with D and E together they rose (each set left out, category / sub-
category: holdout3 93/77 -> 95/83%, set C 93/82 -> 95/89%, set D 83/76 -> 86/78%, set E 87/64 -> 93/68%;
devset 95 -> 94%, holdout sub-category 96 -> 92%; `python -m bench.eval_classifier --sets bench/devset,...,
bench/holdout7 --features tfidf --seed-calls on --outcomes on --learning ""`).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import yaml

from bench.eval_analysis import load_devset, script_to_record
from bench.eval_classifier import EMPTY, flat_label
from pipeline.analysis.analyser import turn_views
from pipeline.analysis.classifier import classifier_text, split_views
from pipeline.settings import PACKAGE_DATA

REPO = Path(__file__).resolve().parent.parent
SETS = ("bench/devset", "bench/holdout", "bench/holdout2", "bench/holdout3", "bench/holdout4", "bench/holdout5",
        "bench/holdout6", "bench/holdout7")
HEADER = """\
# Seed training calls for the classifier, written by `python -m bench.seed_from_sets` from the bench's
# labelled sets (do not edit by hand: edit the sets and run it again). Each call is the customer's side
# (`text`) and the agent's (`agent`) as the classifier reads them; `source` lets a bench leave out the set it scores
# (analysis.seed_calls_leave_out).
"""


def seed_calls(sets: Iterable[str]) -> list[dict[str, str]]:
    calls = []
    for folder in sets:
        name = Path(folder).name
        for script in load_devset(REPO / folder):
            if script.labels["category"] == EMPTY:
                continue
            customer, agent = split_views(classifier_text(turn_views(script_to_record(script).turns)))
            if customer.strip():
                calls.append({"label": flat_label(script), "source": f"{name}/{script.id}", "text": customer,
                              "agent": agent})
    return calls


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated folders of labelled call scripts")
    parser.add_argument("--out", default=str(PACKAGE_DATA / "seed_calls_sets.yaml"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    calls = seed_calls(args.sets.split(","))
    body = yaml.safe_dump({"version": f"sets-{len(calls)}", "calls": calls}, allow_unicode=True, sort_keys=False,
                          width=1000)
    Path(args.out).write_text(HEADER + body, encoding="utf-8")
    counts = Counter(c["label"] for c in calls)
    print(f"{len(calls)} calls -> {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
