"""``python -m batch run INPUT...``: audit every recording in folders, globs, ZIPs or manifest CSVs,
on local disk or in object storage (``s3://bucket/prefix/``, ``gs://``, ``abfs://``).

Runs on a local Ray by default, or on a cluster when RAY_ADDRESS is set. Results go to MongoDB
(the embedded server unless CALLAUDIT_STORE__MONGO_URI is set); a summary is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from pipeline.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="process recordings")
    run.add_argument(
        "inputs",
        nargs="+",
        help="folders, globs, .zip, manifest .csv or audio files: local paths or s3://, gs://, abfs:// URIs",
    )
    run.add_argument("--config", type=Path, help="settings YAML file")
    run.add_argument("--reprocess", action="store_true", help="process recordings already stored for this version")
    run.add_argument("--reanalyse", action="store_true", help="re-run only the LLM analysis on stored transcripts")
    run.add_argument("--no-analysis", action="store_true", help="transcripts and metrics only")
    run.add_argument("--export", type=Path, help="also write every record of this job as JSON files here")
    run.add_argument("--summary-json", type=Path, help="write the job summary as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("ray").setLevel(logging.WARNING)

    settings = Settings.from_yaml(args.config) if args.config else Settings()
    if args.no_analysis:
        settings.analysis.enabled = False

    from batch.job import BatchJob, record_ids_of_job
    from batch.reanalyse import reanalyse_stored
    from pipeline.store.store import CallStore

    with CallStore(settings) as store:
        if args.reanalyse:
            summary = reanalyse_stored(settings, store, args.inputs)
        else:
            summary = BatchJob(settings, store, on_progress=lambda m: print(m, file=sys.stderr, flush=True)).run(
                args.inputs, reprocess=args.reprocess
            )
        if args.export:
            args.export.mkdir(parents=True, exist_ok=True)
            for record_id in record_ids_of_job(store, summary.job_id):
                record = store.get_record(record_id)
                if record is not None:
                    (args.export / f"{Path(record.file_name).stem}.json").write_text(record.model_dump_json(indent=2))
    print(summary.as_text())
    if args.summary_json:
        args.summary_json.write_text(json.dumps(asdict(summary), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
