"""Command line for the analysis stage alone: re-run it on stored records, record reviewer corrections.

    python -m pipeline.analysis reanalyse RECORD.json|RECORDS.jsonl... [--out DIR] [--only-pending]
    python -m pipeline.analysis retrain

Reviewer corrections are ``python -m pipeline correct RECORD_ID ...``: a correction is stored on the
call too, through the one save path (``pipeline.save``), which this package does not import.

``reanalyse`` never touches audio: it reads the records' turns, so a transcript that survived an LLM
outage (``analysis_status: pending``) gets its analysis without re-transcribing. Records are written
back in place unless ``--out`` is given. Settings come from the environment as everywhere else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.records import CallRecord
from pipeline.settings import Settings


def _read(path: Path) -> list[CallRecord]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [CallRecord.model_validate_json(line) for line in text.splitlines() if line.strip()]
    return [CallRecord.model_validate_json(text)]


def _write(path: Path, records: Sequence[CallRecord]) -> None:
    if path.suffix == ".jsonl":
        body = "".join(r.model_dump_json() + "\n" for r in records)
    else:
        body = records[0].model_dump_json(indent=2)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)


def reanalyse_files(paths: Iterable[Path], settings: Settings, out: Path | None, only_pending: bool) -> int:
    from pipeline.analysis.analyser import Analyser, reanalyse

    analyser = Analyser(settings)
    changed = 0
    for path in paths:
        records = _read(path)
        updated = []
        for record in records:
            if only_pending and record.analysis_status not in {"pending", "failed", "not_run"}:
                updated.append(record)
                continue
            result = reanalyse(record, analyser)
            changed += 1
            print(f"{record.record_id}: {record.analysis_status} -> {result.analysis_status}", file=sys.stderr)
            updated.append(result)
        target = (out / path.name) if out else path
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, updated)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    re_p = commands.add_parser("reanalyse", help="re-run the analysis on stored record files")
    re_p.add_argument("paths", nargs="+", type=Path)
    re_p.add_argument("--out", type=Path, default=None, help="write here instead of in place")
    re_p.add_argument("--only-pending", action="store_true", help="skip records whose analysis is done")
    commands.add_parser("retrain", help="retrain the classifier from all corrections now")
    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "reanalyse":
        reanalyse_files(args.paths, settings, args.out, args.only_pending)
        return 0
    from pipeline.analysis.classifier import CallClassifier
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.store.corrections import close_corrections, open_corrections

    classifier = CallClassifier.from_settings(settings.home, Taxonomy.load(settings.analysis.taxonomy_file),
                                           settings.analysis)
    store = open_corrections(settings)
    try:
        model = classifier.train(store.all())
    finally:
        close_corrections(store)
    print(f"trained on {model.n_seed} seed examples and {model.n_corrections} corrections: {model.labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
