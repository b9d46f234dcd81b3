"""Command line: ``python -m pipeline FILE_OR_FOLDER...`` → one JSON record per recording.

Other commands: ``python -m pipeline reanalyse RECORD.json|RECORDS.jsonl...`` re-runs only the
analysis on record files (in place unless ``--out``); ``python -m pipeline correct RECORD_ID
--category ...`` records a reviewer's correction and puts it on the stored call; ``python -m
pipeline follow-ups`` applies the taxonomy's follow-up rules to every stored call (after a spool replay or a
taxonomy change; saves do it for their own customers); ``python -m pipeline models`` assembles and verifies
the packaged models.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from pipeline.records import CallRecord
from pipeline.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "model", None):
        overrides.setdefault("transcribe", {})["model"] = args.model
    if getattr(args, "language", None):
        overrides.setdefault("transcribe", {})["language"] = args.language
    if getattr(args, "enhance", None):
        overrides.setdefault("enhance", {})["backend"] = args.enhance
    return Settings.with_overrides(overrides, args.config)


def _emit(record: CallRecord, out_dir: Path | None) -> None:
    text = record.model_dump_json(indent=2)
    if out_dir is None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{Path(record.file_name).stem}.json").write_text(text)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.runner import CallPipeline, expand_inputs

    settings = _settings(args)
    files = expand_inputs(args.inputs)
    if not files:
        print("no recordings found in the given inputs", file=sys.stderr)
        return 2
    pipeline = CallPipeline(settings, analyse=not args.no_analysis)
    started = time.perf_counter()
    failed = 0
    for i, record in enumerate(pipeline.process_files(files)):
        _emit(record, args.out)
        failed += record.status == "failed"
        reason = "; ".join(e.message for e in record.errors)
        print(
            f"[{i + 1}/{len(files)}] {record.file_name}: {record.status}"
            f" ({record.audio.duration_s:.1f} s audio, {len(record.turns)} turns)" + (f" - {reason}" if reason else ""),
            file=sys.stderr,
            flush=True,
        )
    elapsed = time.perf_counter() - started
    print(f"done: {len(files)} recordings, {failed} failed, {elapsed:.1f} s", file=sys.stderr)
    return 0


def _read_records(path: Path) -> list[CallRecord]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [CallRecord.model_validate_json(line) for line in text.splitlines() if line.strip()]
    return [CallRecord.model_validate_json(text)]


def _write_records(path: Path, records: list[CallRecord]) -> None:
    body = "".join(r.model_dump_json() + "\n" for r in records) if path.suffix == ".jsonl" else (
        records[0].model_dump_json(indent=2)
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


def cmd_reanalyse(args: argparse.Namespace) -> int:
    """The analysis stage group again on record files (JSON or JSONL), in place unless ``--out``.

    Never touches audio: a transcript that survived an LLM outage (``analysis_status: pending``) gets
    its analysis without re-transcribing. Stored calls: ``python -m batch run INPUT --reanalyse``.
    """
    from pipeline.stage import CallState
    from pipeline.stage_groups import analysis_group

    settings = _settings(args)
    if not settings.analysis.enabled:
        print("analysis is disabled in settings", file=sys.stderr)
        return 2
    analysis = analysis_group().chain(settings)
    for path in args.records:
        records = _read_records(path)
        updated = []
        for record in records:
            if args.only_pending and record.analysis_status not in {"pending", "failed", "not_run"}:
                updated.append(record)
                continue
            done = analysis.run(CallState(record=record.model_copy(deep=True))).record
            print(f"{path}: {record.record_id}: {record.analysis_status} -> {done.analysis_status}", file=sys.stderr)
            updated.append(done)
        target = (args.out / path.name) if args.out else path
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_records(target, updated)
    return 0


def cmd_correct(args: argparse.Namespace) -> int:
    """A reviewer's correction from the command line: the same save path as the API's."""
    import json

    from pipeline.save import CallWriter
    from pipeline.store.store import CallStore
    from pipeline.store.upgrades import record_from_stored

    labels: dict[str, object] = {}
    if args.category:
        labels["category"] = args.category
        labels["subcategory"] = args.subcategory
    elif args.subcategory:
        labels["subcategory"] = args.subcategory
    for key in ("customer_sentiment", "agent_sentiment"):
        if getattr(args, key):
            labels[key] = getattr(args, key)
    if args.callback_promised:
        labels["callback_promised"] = args.callback_promised == "true"
    if not labels:
        print("nothing to correct: give --category, --subcategory, a sentiment or --callback-promised", file=sys.stderr)
        return 2
    settings = _settings(args)
    with CallStore(settings) as store:
        doc = store.get_document(args.record_id)
        if doc is None:
            print(f"no stored call {args.record_id!r}", file=sys.stderr)
            return 2
        writer = CallWriter(settings, store)
        try:
            updated, saved = writer.correct(
                record_from_stored(doc), labels, reviewer=args.reviewer, job_id=doc.get("job_id")
            )
        finally:
            writer.close()
    assert updated.analysis is not None
    review = updated.analysis.review
    print(json.dumps({"record_id": updated.record_id, "labels": labels, "reviewer": args.reviewer,
                      "at": review.at.isoformat() if review else None,
                      "stored": not saved.failed and not saved.write.spooled and not saved.write.stale}))
    if saved.failed:
        print(f"the correction is saved but the call could not be updated: {saved.failed}", file=sys.stderr)
        return 1
    return 0


def cmd_follow_ups(args: argparse.Namespace) -> int:
    """The follow-up check over every stored call (``pipeline.follow_up_check``)."""
    import json

    from pipeline.analysis.flags import FlagConfig
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.follow_up_check import check_follow_ups
    from pipeline.store.store import CallStore

    settings = _settings(args)
    with CallStore(settings) as store:
        report = check_follow_ups(store, Taxonomy.load(settings.analysis.taxonomy_file),
                                  FlagConfig.load(settings.analysis.flags_file))
    print(json.dumps({"checked": report.checked, "follow_ups": report.follow_ups, "relabelled": report.changed}))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.models import prepare_all

    settings = _settings(args)
    for name, path in prepare_all(settings.models_cache).items():
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--config", type=Path, help="settings YAML file")
    commands = {"reanalyse", "correct", "follow-ups", "models", "run"}
    if not argv or argv[0] not in commands:
        argv = ["run", *argv]
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="audit recordings (the default command)")
    run.add_argument("inputs", nargs="+", help="audio files or folders")
    run.add_argument("--out", type=Path, help="write NAME.json per recording here instead of stdout")
    run.add_argument("--no-analysis", action="store_true", help="transcript and metrics only")
    run.add_argument("--model", help="Whisper model: packaged name, hub name or folder")
    run.add_argument("--language", help="fixed language code instead of detection")
    run.add_argument("--enhance", choices=["none", "deepfilternet", "resemble"])
    run.add_argument("--config", type=Path, default=None)
    re = sub.add_parser("reanalyse", help="re-run only the analysis on record files (.json, .jsonl), in place")
    re.add_argument("records", nargs="+", type=Path)
    re.add_argument("--out", type=Path, help="write the re-analysed files here instead of in place")
    re.add_argument("--only-pending", action="store_true", help="skip records whose analysis is done")
    re.add_argument("--config", type=Path, default=None)
    fix = sub.add_parser("correct", help="record a reviewer's labels for a stored call and put them on it")
    fix.add_argument("record_id")
    fix.add_argument("--category")
    fix.add_argument("--subcategory")
    fix.add_argument("--customer-sentiment", choices=["positive", "neutral", "negative"])
    fix.add_argument("--agent-sentiment", choices=["positive", "neutral", "negative"])
    fix.add_argument("--callback-promised", choices=["true", "false"])
    fix.add_argument("--reviewer")
    fix.add_argument("--config", type=Path, default=None)
    follow = sub.add_parser("follow-ups", help="apply the taxonomy's follow-up rules to every stored call")
    follow.add_argument("--config", type=Path, default=None)
    models = sub.add_parser("models", help="assemble and verify the packaged models")
    models.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    handler = {"run": cmd_run, "reanalyse": cmd_reanalyse, "correct": cmd_correct, "follow-ups": cmd_follow_ups,
               "models": cmd_models}[args.command]
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
