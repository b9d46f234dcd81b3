"""``python -m pipeline.store COMMAND``: maintenance and export for the results database.

Commands: ``replay-spool``, ``verify-callbacks``, ``migrate``, ``export --format csv|jsonl --out FILE``,
``stats``, ``scorecards``, ``job JOB_ID``. Settings come from the environment (``CALLAUDIT_*``), a
``.env`` file or ``--config settings.yaml``, as for the rest of callaudit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from pipeline.store.callbacks import verify_callbacks
from pipeline.store.embedded import EmbeddedStartError
from pipeline.store.migrations import migrate
from pipeline.store.queries import (
    CallQuery,
    ExportFormat,
    agent_scorecards,
    category_distribution,
    export_calls,
    overview,
)
from pipeline.store.store import CallStore, StoreUnavailable


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _query(args: argparse.Namespace) -> CallQuery:
    return CallQuery(
        time_from=args.time_from,
        time_to=args.time_to,
        agent_id=args.agent,
        customer=args.customer,
        category=args.category,
        flag=args.flag,
        sentiment=args.sentiment,
        compliance_failed=args.compliance_failed,
        callback_status=args.callback_status,
        text=args.text,
        job_id=args.job,
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--from", dest="time_from", type=datetime.fromisoformat, help="call time from (ISO 8601)")
    group.add_argument("--to", dest="time_to", type=datetime.fromisoformat, help="call time before (ISO 8601)")
    group.add_argument("--agent")
    group.add_argument("--customer", help="customer id or phone")
    group.add_argument("--category")
    group.add_argument("--flag")
    group.add_argument("--sentiment", choices=["positive", "neutral", "negative"])
    group.add_argument("--compliance-failed", metavar="ITEM")
    group.add_argument("--callback-status", choices=["pending", "kept", "overdue", "unverifiable", "any", "none"])
    group.add_argument("--text", help="keyword search over transcripts (every word must occur)")
    group.add_argument("--job", help="only calls written by this job")


def cmd_replay(store: CallStore, args: argparse.Namespace) -> int:
    pending = store.spool.pending_entries()
    if not pending:
        print(f"nothing to replay in {store.spool.directory}")
        return 0
    report = store.replay_spool()
    print(
        f"replayed {report.calls} record(s) and {report.ops} job update(s) from {report.files} file(s); "
        f"{report.stale} already superseded by newer data"
    )
    if report.rejected_lines:
        print(f"{report.rejected_lines} unreadable line(s) kept in {store.spool.directory}/rejected-*.jsonl")
    for failure in report.failed:
        print(f"not replayed: {failure}", file=sys.stderr)
    if report.remaining_files:
        print(f"{report.remaining_files} spool file(s) still waiting; run replay-spool again", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_callbacks(store: CallStore, args: argparse.Namespace) -> int:
    report = verify_callbacks(store, now=args.now)
    print(
        f"{report.checked} promised callback(s): {report.kept} kept, {report.overdue} overdue, "
        f"{report.pending} pending, {report.unverifiable} unverifiable ({report.changed} changed)"
    )
    for record_id in report.overdue_ids[:50]:
        print(f"  overdue: {record_id}")
    return 0


def cmd_migrate(store: CallStore, args: argparse.Namespace) -> int:
    report = migrate(store, dry_run=args.dry_run)
    verb = "would migrate" if args.dry_run else "migrated"
    print(f"{report.scanned} outdated record(s): {verb} {report.migrated}, failed {len(report.failed)}")
    if report.changed_meanwhile:
        print(f"{report.changed_meanwhile} changed by another writer meanwhile and left to it")
    for record_id, why in report.failed.items():
        print(f"  {record_id}: {why}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_export(store: CallStore, args: argparse.Namespace) -> int:
    fmt: ExportFormat = args.format or ("jsonl" if args.out and args.out.suffix == ".jsonl" else "csv")
    if args.out is None or str(args.out) == "-":
        count = export_calls(store, sys.stdout, fmt, _query(args))
    else:
        count = export_calls(store, args.out, fmt, _query(args))
        print(f"exported {count} call(s) to {args.out}", file=sys.stderr)
    return 0


def cmd_stats(store: CallStore, args: argparse.Namespace) -> int:
    query = _query(args)
    summary = overview(store, query)
    summary["categories"] = category_distribution(store, query)
    summary["jobs"] = store.retry("count jobs", lambda: store.jobs.count_documents({}))
    summary["spooled_entries"] = store.spool.pending_entries()
    summary["database"] = store.uri
    _print_json(summary)
    return 0


def cmd_scorecards(store: CallStore, args: argparse.Namespace) -> int:
    _print_json(agent_scorecards(store, _query(args)))
    return 0


def cmd_job(store: CallStore, args: argparse.Namespace) -> int:
    job = store.get_job(args.job_id, file_limit=args.files)
    if job is None:
        print(f"no job {args.job_id!r}", file=sys.stderr)
        return 1
    _print_json(job)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.store", description="Maintenance and export for the callaudit results database."
    )
    parser.add_argument("--config", type=Path, help="settings YAML file")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "replay-spool", aliases=["replay"], help="write results spooled while the database was down"
    ).set_defaults(func=cmd_replay)
    p = sub.add_parser("verify-callbacks", help="mark promised callbacks kept, overdue or pending")
    p.add_argument("--now", type=datetime.fromisoformat, help="judge as of this time (ISO 8601)")
    p.set_defaults(func=cmd_callbacks)
    p = sub.add_parser("migrate", help="rewrite records from older schema versions")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("export", help="export calls as CSV or JSONL")
    p.add_argument("--format", choices=["csv", "jsonl"])
    p.add_argument("--out", type=Path, help="output file ('-' or none: standard output)")
    _add_filters(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("stats", help="totals, categories, callbacks, flags, spool")
    _add_filters(p)
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("scorecards", help="per-agent scorecards as JSON")
    _add_filters(p)
    p.set_defaults(func=cmd_scorecards)
    p = sub.add_parser("job", help="a job with per-file status")
    p.add_argument("job_id")
    p.add_argument("--files", type=int, default=1000, help="list at most this many files")
    p.set_defaults(func=cmd_job)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = Settings.from_yaml(args.config) if args.config else Settings()
        if args.func is cmd_replay:
            settings.store.auto_replay = False  # replay here, where the report is shown, not silently at connect
        with CallStore(settings) as store:
            return int(args.func(store, args))
    except (StoreUnavailable, EmbeddedStartError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
