"""Focused sentiment questions vs the words-only rules, per labelled set (an experiment bench).

For every non-empty labelled call of each set, the LLM is asked three short questions built from the
rubric's sentiment definitions (customer at the start, at the end, the agent over the call), each on
only the turns it is about, and its token probabilities over negative / neutral / positive are kept
(cached in bench/out/sentiment_probe/<set>.json, so re-scoring is free). Printed per set: the LLM's
argmax, the words-only rules (start cues, the agent manner rule), and a small model over both fitted on
the OTHER sets (leave one set out: what a set written by a new author should expect).

    python -m bench.sentiment_probe bench/holdout3 bench/holdout4 ... [--threads 2] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.eval_analysis import Script, load_devset, script_to_record
from pipeline.analysis.analyser import turn_views
from pipeline.analysis.sentiment import LABELS, speaking_turns, start_label
from pipeline.analysis.sentiment_model import agent_features, customer_features, load_cues
from pipeline.analysis.text import AGENT, CUSTOMER, TurnView
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "sentiment_probe"

SYSTEM = (
    "You rate the mood of one party of a customer-service phone call from their words, by the QA rubric:\n"
    "- negative = frustrated, angry, distressed, worried, dismissive, rude or impatient;\n"
    "- positive = warm, friendly, grateful, relieved or enthusiastic;\n"
    "- neutral = matter-of-fact. A plain \"okay, thanks, bye\" is neutral; \"great, thank you so much!\" is "
    "positive.\n"
    "- An agent who is courteous and helpful throughout is positive; curt or condescending is negative; "
    "polite but plain and businesslike is neutral.\n"
    "Answer with the label only."
)
SCHEMA = {"type": "object", "properties": {"mood": {"type": "string", "enum": list(LABELS)}}, "required": ["mood"]}
MAX_CHARS = 1400


def _lines(turns: Sequence[TurnView]) -> str:
    return "\n".join(f"{'Agent' if t.role == AGENT else 'Customer'}: {t.text}" for t in turns)


def questions(turns: Sequence[TurnView]) -> dict[str, str]:
    """The three focused questions, each with only the turns it is about (plus the agent's line before)."""
    customer = speaking_turns(turns, CUSTOMER)
    out: dict[str, str] = {}
    if customer:
        first = customer[:2]
        upto = turns.index(first[-1]) if first[-1] in turns else len(turns) - 1
        opening = list(turns[: upto + 1])[-4:]
        out["customer_start"] = (f"The call opens:\n{_lines(opening)}\n\n"
                                 "How does the CUSTOMER sound in their first words?")
        last = customer[-2:]
        begin = turns.index(last[0]) if last[0] in turns else 0
        closing = list(turns[max(0, begin - 1):])[-6:]
        out["customer_end"] = (f"The call ends:\n{_lines(closing)}\n\n"
                               "How does the CUSTOMER sound in their last words?")
    agent = [t for t in turns if t.role == AGENT]
    if agent:
        text = _lines(agent)
        if len(text) > MAX_CHARS:  # the opening and the close say most about manner
            half = MAX_CHARS // 2
            text = text[:half] + "\n...\n" + text[-half:]
        out["agent"] = f"Everything the AGENT said in the call:\n{text}\n\nHow does the AGENT come across overall?"
    return out


def ask_all(scripts: Sequence[Script], cache_path: Path, threads: int) -> dict[str, dict[str, dict[str, float]]]:
    cache: dict[str, dict[str, dict[str, float]]] = (
        json.loads(cache_path.read_text(encoding="utf-8")) if cache_path.exists() else {})
    todo = [s for s in scripts if s.id not in cache]
    if not todo:
        return cache
    from pipeline.analysis.llm import make_backend

    settings = Settings()
    settings.llm.backend = "embedded"
    settings.llm.embedded_threads = threads
    backend = make_backend(settings)
    try:
        for script in todo:
            turns = turn_views(script_to_record(script).turns)
            started = time.perf_counter()
            answers: dict[str, dict[str, float]] = {}
            for key, user in questions(turns).items():
                _, usage = backend.complete_json(SYSTEM, user, SCHEMA)
                answers[key] = dict(usage.choice_probs.get("mood") or {})
            cache[script.id] = answers
            print(f"  {script.id} {time.perf_counter() - started:.1f}s "
                  + " ".join(f"{k}={max(v, key=lambda x: v[x]) if v else '?'}" for k, v in answers.items()),
                  flush=True)
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=0), encoding="utf-8")
    finally:
        backend.close()
    return cache


def _argmax(probs: dict[str, float] | None) -> str:
    return max(probs, key=lambda k: probs[k]) if probs else "neutral"


def _score(probs: dict[str, float] | None) -> float:
    return (probs or {}).get("positive", 0.0) - (probs or {}).get("negative", 0.0)


def rows_of(scripts: Sequence[Script], answers: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    cues, manner = load_cues(Settings().analysis.sentiment_cues_file)  # type: ignore[arg-type]
    rows = []
    for script in scripts:
        if script.labels.get("category") == "Empty Call" or script.id not in answers:
            continue
        turns = turn_views(script_to_record(script).turns)
        got = answers[script.id]
        p_start, p_end, p_agent = got.get("customer_start"), got.get("customer_end"), got.get("agent")
        start_rule = start_label(turns, "neutral", cues)
        rows.append({
            "id": script.id,
            "gold": {"customer_start": script.labels.get("customer_sentiment_start"),
                     "customer_end": script.labels.get("customer_sentiment_end"),
                     "agent": script.labels.get("agent_sentiment")},
            "llm": {"customer_start": _argmax(p_start), "customer_end": _argmax(p_end), "agent": _argmax(p_agent)},
            "rules": {"customer_start": start_rule,
                      "agent": manner.label(turns) or "neutral"},
            "features": {
                "customer_start": [*[math.log((p_start or {}).get(k, 1e-4) + 1e-4) for k in LABELS],
                                   1.0 if start_rule == "negative" else 0.0, 1.0 if start_rule == "positive" else 0.0],
                "customer_end": [*[math.log((p_end or {}).get(k, 1e-4) + 1e-4) for k in LABELS],
                                 *customer_features(turns, _score(p_end), cues)[1:]],
                "agent": [*[math.log((p_agent or {}).get(k, 1e-4) + 1e-4) for k in LABELS],
                          *agent_features(turns, _score(p_agent), manner)[1:]],
            },
        })
    return rows


def cross_set(sets: dict[str, list[dict[str, Any]]], key: str) -> dict[str, float]:
    """Accuracy on each set of a logistic model over features fitted on the other sets."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for name, rows in sets.items():
        test = [r for r in rows if r["gold"][key]]
        train = [r for other, more in sets.items() if other != name for r in more if r["gold"][key]]
        if not test or len({r["gold"][key] for r in train}) < 2:
            continue
        model = LogisticRegression(C=0.3, max_iter=5000, class_weight="balanced")
        model.fit([r["features"][key] for r in train], [r["gold"][key] for r in train])
        predicted = model.predict([r["features"][key] for r in test])
        out[name] = sum(p == r["gold"][key] for p, r in zip(predicted, test, strict=True)) / len(test)
    return out


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--words-only", action="store_true", help="no LLM: the words-based rules and features")
    parser.add_argument("--score-only", action="store_true", help="use only cached answers")
    args = parser.parse_args(list(argv) if argv is not None else None)
    by_set: dict[str, list[dict[str, Any]]] = {}
    for folder in args.sets:
        scripts = load_devset(Path(folder))
        if args.limit:
            scripts = scripts[: args.limit]
        cache = OUT / f"{Path(folder).name}.json"
        if args.words_only:
            answers: dict[str, dict[str, dict[str, float]]] = {s.id: {} for s in scripts}
        elif args.score_only:
            answers = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
        else:
            answers = ask_all(scripts, cache, args.threads)
        by_set[Path(folder).name] = rows_of(scripts, answers)
    fitted = {key: cross_set(by_set, key) for key in ("customer_start", "customer_end", "agent")}
    for name, rows in by_set.items():
        parts = [f"{name} ({len(rows)} calls)"]
        for key in ("customer_start", "customer_end", "agent"):
            gold = [r for r in rows if r["gold"][key]]
            if not gold:
                continue
            llm = sum(r["llm"][key] == r["gold"][key] for r in gold) / len(gold)
            rule = (sum(r["rules"][key] == r["gold"][key] for r in gold) / len(gold)) if key in gold[0]["rules"] \
                else float("nan")
            others = fitted[key].get(name, math.nan)
            parts.append(f"{key}: llm {llm:.0%} rules {rule:.0%} fitted-on-others {others:.0%}")
        print("; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
