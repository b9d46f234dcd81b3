"""Score the exact rules alone (no LLM) on a rubric-labelled set: callbacks, compliance, PII, in seconds.

The same rules the analyser runs (``redact_turns``, ``check_call``, ``analyse_callback`` without the LLM's
callback turn; the cross-call ``final_status`` from the store's own check in an embedded store), on the
scripts' own words (``text``) and on the transcripts ``bench.eval_rubric --audio``
cached under ``bench/out/rubric/<set>/transcripts`` (``16k``, ``8k``), and on the scripts' words without
punctuation or capitals (``plain``). Use it while changing a rule; the
full score (category, sentiment, the LLM's extra promises) stays ``bench.eval_rubric``.

Usage::

    python -m bench.eval_rules --set bench/holdout4 --set bench/holdout3 [--condition 16k] [-v] [--per-item]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from bench.eval_rubric import (
    COMPLIANCE_ITEMS,
    OUT,
    REPO,
    Call,
    Prediction,
    cross_call_status,
    load_set,
    pii_hits,
    rubric_final_status,
    text_record,
)
from pipeline.analysis.analyser import is_empty_call, local_reference, turn_views
from pipeline.analysis.callbacks import analyse_callback
from pipeline.analysis.compliance import CallFacts, Checklist, check_call
from pipeline.analysis.pii import redact_turns
from pipeline.analysis_schema import Analysis
from pipeline.records import CallRecord
from pipeline.settings import Settings


def _record(call: Call, condition: str, folder: Path) -> CallRecord | None:
    if condition == "text":
        return text_record(call)
    if condition == "plain":
        # The script's words as a transcriber without punctuation or capitals writes them.
        record = text_record(call)
        for turn in record.turns:
            turn.text = " ".join(re.sub(r"[^\w\s'@-]", " ", turn.text).lower().split())
        return record
    cached = sorted((OUT / "rubric" / folder.name / "transcripts").glob(f"{call.id}-{condition}-*.json"))
    if not cached:
        return None
    record = CallRecord.model_validate(json.loads(cached[0].read_text(encoding="utf-8"))["record"])
    record.metadata = call.metadata()
    return record


def score_rules(folder: Path, condition: str, verbose: bool = False,
                per_item: dict[str, dict[str, int]] | None = None) -> dict[str, float | int]:
    """The set's scores; ``per_item`` (when given) gets each compliance item's counts: tp / fp / fn of
    "fail", ``agree`` (the rule's status is the rubric's) and ``n`` (calls the rubric labels)."""
    settings = Settings()
    cfg = settings.analysis
    checklist = Checklist.load(cfg.compliance_file)
    calls, as_of = load_set(folder)
    n = tp = fp = fn = due_ok = due_n = ctp = cfp = cfn = pii_calls = pii_full = pii_false = 0
    # Every call of the set goes to the store for the cross-call check: scored ones with the rules' promise,
    # the rest (no cached transcript) as the day's other calls.
    stored: list[CallRecord] = []
    promised_by: dict[str, tuple[Call, bool]] = {}

    def say(text: str) -> None:
        if verbose:
            print(f"  {text}")

    for call in calls:
        record = _record(call, condition, folder)
        if record is None:
            stored.append(text_record(call))
            continue
        n += 1
        original = [t.text for t in record.turns]
        redacted, pii = redact_turns(record.turns, cfg.pii_kinds,
                                     [call.company or ""] if cfg.pii_keep_company_addresses else ())
        turns = turn_views(redacted)
        empty, _ = is_empty_call(turns, record.metrics, cfg)
        facts = CallFacts(turns=turns, pii=pii, empty=empty, company_names=[call.company or ""],
                          agent_names=[call.agent_name or ""])
        compliance = {r.id: r for r in check_call(checklist, facts)}
        callback = analyse_callback(turns, local_reference(record, cfg.timezone))
        stored.append(record.model_copy(update={"analysis": Analysis(callback=callback)}))
        promised_by[record.audio_sha256] = (call, callback.promised)
        gold = call.labels.get("callback") or {}
        promised = bool(gold.get("promised"))
        tp += callback.promised and promised
        fp += callback.promised and not promised
        fn += promised and not callback.promised
        if callback.promised != promised:
            say(f"{call.id} callback {'false promise' if callback.promised else 'missed promise'}")
        if promised and gold.get("due"):
            due_n += 1
            want = datetime.fromisoformat(str(gold["due"]))
            got = callback.due.replace(tzinfo=None) if callback.due else None
            ok = got is not None and got.date() == want.date() and got.hour == want.hour
            due_ok += ok
            if not ok:
                say(f"{call.id} due {got} want {want} ({callback.due_text})")
        for item in COMPLIANCE_ITEMS:
            want_status = (call.labels.get("compliance") or {}).get(item)
            result = compliance.get(item)
            failed = result is not None and result.status == "fail"
            ctp += failed and want_status == "fail"
            cfp += failed and want_status != "fail"
            cfn += want_status == "fail" and not failed
            if per_item is not None and want_status is not None:
                counts = per_item.setdefault(item, {"tp": 0, "fp": 0, "fn": 0, "agree": 0, "n": 0})
                counts["tp"] += failed and want_status == "fail"
                counts["fp"] += failed and want_status != "fail"
                counts["fn"] += want_status == "fail" and not failed
                counts["agree"] += result is not None and result.status == want_status
                counts["n"] += 1
            if verbose and not failed and result is not None and want_status not in (None, "fail", result.status):
                say(f"{call.id} {item}: {result.status} want {want_status} ({result.reason})")
            if failed != (want_status == "fail"):
                say(f"{call.id} {item}: {result.status if result else None} want {want_status} "
                    f"({result.reason if result else ''})")
        pred = Prediction(id=call.id, condition=condition)
        pred.pii = [{"kind": s.kind, "turn": s.turn, "start": s.char_start, "end": s.char_end,
                     "text": original[s.turn][s.char_start : s.char_end]} for s in pii]
        masked, wanted, false = pii_hits(call, pred)
        pii_false += false
        if wanted:
            pii_calls += 1
            pii_full += masked == wanted
        if masked < wanted or false:
            gold = [p["text"] for p in call.labels.get("pii") or []]
            say(f"{call.id} PII masked {[p['text'] for p in pred.pii]} want {gold}")

    status_ok = status_n = 0
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store_settings = Settings(home=home, models_dir=REPO / ".cache" / "callaudit" / "models")
        verdicts = cross_call_status(store_settings, stored, as_of)
    for digest, (call, promised_now) in promised_by.items():
        want_final = (call.labels.get("callback") or {}).get("final_status")
        if not want_final:
            continue
        status_n += 1
        got_final = rubric_final_status((verdicts.get(digest) or {}).get("callback_status"), promised_now)
        status_ok += got_final == want_final
        if got_final != want_final:
            say(f"{call.id} final_status {got_final} want {want_final}")

    def ratio(a: int, b: int) -> float:
        return round(a / b, 2) if b else 0.0

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {"calls": n, "callback_f1": ratio(2 * tp, 2 * tp + fp + fn), "callback_precision": precision,
            "callback_recall": recall, "due_exact_hour": ratio(due_ok, due_n), "due_n": due_n,
            "final_status": ratio(status_ok, status_n), "final_status_n": status_n,
            "compliance_precision": ratio(ctp, ctp + cfp), "compliance_recall": ratio(ctp, ctp + cfn),
            "pii_calls_masked": pii_full, "pii_calls": pii_calls, "pii_false_masks": pii_false}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", required=True, help="folder of call scripts (repeatable)")
    parser.add_argument("--condition", action="append", choices=["text", "plain", "16k", "8k"],
                        help="text (default), plain (the text lower-cased without punctuation, as some "
                             "transcribers write it) and/or cached transcripts")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every error")
    parser.add_argument("--per-item", action="store_true",
                        help="also print each compliance item's fail precision/recall and status agreement")
    args = parser.parse_args(list(argv) if argv is not None else None)
    for folder in args.set:
        for condition in args.condition or ["text"]:
            items: dict[str, dict[str, int]] = {}
            result = score_rules(Path(folder), condition, args.verbose, items if args.per_item else None)
            print(f"{Path(folder).name} {condition}: " + ", ".join(f"{k} {v}" for k, v in result.items()))
            for item, c in items.items():
                p = f"{c['tp'] / (c['tp'] + c['fp']):.2f}" if c["tp"] + c["fp"] else "-"
                r = f"{c['tp'] / (c['tp'] + c['fn']):.2f}" if c["tp"] + c["fn"] else "-"
                print(f"  {item:<22} fail P {p:>4} R {r:>4} (pred {c['tp'] + c['fp']}, gold {c['tp'] + c['fn']}), "
                      f"status agrees {c['agree']}/{c['n']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
