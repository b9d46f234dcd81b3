"""Batch inputs from object storage vs local disk, in one run.

1. **Planning** ``--objects`` recordings (default 10,000): the same tree of small files on local disk
   and in a bucket of a loopback S3 server (moto in server mode). Each variant runs in a fresh
   process that reports its planning time and its peak RSS above what it held after imports
   (the driver's memory for the plan):
   * ``before, local``: the code before this change (batch/ of ``--before``, default the branch's
     base commit): list, then read and hash every file on the driver;
   * ``local`` and ``s3``: this code: list only (path, size, mtime);
   * ``skip lookup``: the re-run case, the 10,000 fingerprints looked up in the database after
     being remembered (what decides "already done" without reading a byte).
   The files are ``--object-kb`` KB each (default 32) to keep the disk work small here; the
   "before" hashing cost grows with real recordings' size (about 1 MB a minute of 8 kHz wav), the
   listing does not.
2. **Job throughput** on the same ``--calls`` short calls (default 40 x 10 s) read from local disk
   and from the S3 server, one Ray session, Whisper tiny.en, one CPU thread, analysis off (this
   machine has 2 cores shared with other work: quote the ratio, not the absolute rate).

    python -m bench.object_store_bench [--objects 10000] [--calls 40] [--out bench/out/object_store.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-12-06"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """The process's largest resident set while planning, sampled every 5 ms, above where it started."""

    def __init__(self) -> None:
        self.baseline = _rss_mb()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def plan_once(variant: str, source: str, settings_json: str) -> dict[str, Any]:
    """Runs in its own process: plan ``source`` as the driver would and report time and memory."""
    import pyarrow.fs  # noqa: F401 - imported before the baseline, like the job's own imports

    from pipeline.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    if variant == "before":
        from batch.inputs import hash_files, plan_inputs  # the old package, first on PYTHONPATH

        with PeakRss() as memory, tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            plan = plan_inputs([source], settings, Path(work))  # type: ignore[call-arg]
            hash_files(plan.files, settings.batch.hash_threads)  # type: ignore[call-arg]
            seconds = time.perf_counter() - started
    else:
        from batch.inputs import plan_inputs

        with PeakRss() as memory:
            started = time.perf_counter()
            plan = plan_inputs([source], settings)
            _ = [f.fingerprint for f in plan.files]
            seconds = time.perf_counter() - started
    driver_mb = round(memory.peak - memory.baseline, 1)
    return {"files": len(plan.files), "plan_s": round(seconds, 2), "driver_mb": driver_mb}


def _make_tree(root: Path, count: int, size_kb: int) -> list[str]:
    """``count`` small 'recordings' under 30 agent folders; returns their paths relative to root."""
    payload = os.urandom(size_kb * 1024)
    names = []
    for i in range(count):
        rel = f"{DAY}/agent{i % 30:02d}/call_{i:05d}.wav"
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # Distinct content per file (the old path hashes each), cheap to make.
        target.write_bytes(b"RIFF" + i.to_bytes(4, "little") + payload)
        names.append(rel)
    return names


def _upload(server: Any, bucket: str, root: Path, names: list[str]) -> None:
    fs = server.filesystem()
    fs.create_dir(bucket)

    def put(rel: str) -> None:
        with fs.open_output_stream(f"{bucket}/{rel}") as out:
            out.write((root / rel).read_bytes())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, names))


def _export_before(commit: str, target: Path) -> Path:
    """The batch/ package as it was at ``commit``, to put first on PYTHONPATH."""
    archive = target / "before.tar"
    subprocess.run(["git", "archive", "-o", str(archive), commit, "batch"], cwd=REPO, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target / "before", filter="data")
    return target / "before"


def _child(variant: str, source: str, settings_json: str, first: Path) -> dict[str, Any]:
    """``first``: the folder whose batch/ the child imports (python -m puts its working folder first)."""
    command = [sys.executable, "-m", "bench.object_store_bench", "--plan-once", variant, "--source", source]
    command += ["--settings", settings_json]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=first, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{variant} planning failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_planning(args: argparse.Namespace, server: Any, work: Path, mongo_uri: str) -> dict[str, Any]:
    from batch.inputs import plan_inputs
    from batch.ledger import SourceLedger
    from pipeline.settings import Settings
    from pipeline.store.store import CallStore

    root = work / "tree"
    started = time.perf_counter()
    names = _make_tree(root, args.objects, args.object_kb)
    _upload(server, "plan", root, names)
    print(f"made {len(names)} local files and objects in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    settings = Settings(home=work / "home", batch={"s3_endpoint_url": server.url})
    before = _export_before(args.before, work)
    results: dict[str, Any] = {}
    for label, variant, source, path in (
        ("before, local (list + hash on the driver)", "before", str(root / DAY), before),
        ("local (list only)", "new", str(root / DAY), REPO),
        ("s3 (list only)", "new", f"s3://plan/{DAY}/", REPO),
    ):
        results[label] = _child(variant, source, settings.model_dump_json(), path)
        print(f"{label}: {results[label]}", file=sys.stderr, flush=True)

    # The re-run case: every fingerprint already remembered; one lookup decides all of them.
    store_settings = settings.model_copy(deep=True)
    store_settings.store.mongo_uri = mongo_uri
    store_settings.store.database = "bench_plan"
    plan = plan_inputs([f"s3://plan/{DAY}/"], settings)
    with CallStore(store_settings) as store:
        ledger = SourceLedger(store)
        ids = [f"{i:024x}-bench" for i in range(len(plan.files))]
        store.calls.insert_many(
            [{"_id": rid, "audio_sha256": rid, "pipeline_version": "bench", "status": "ok"} for rid in ids]
        )
        ledger.remember(list(zip([f.fingerprint for f in plan.files], ids, strict=True)))
        started = time.perf_counter()
        finished = ledger.finished(f.fingerprint for f in plan.files)
        lookup_s = time.perf_counter() - started
        # What the driver writes next, before and after this change alike: each file's job status.
        started = time.perf_counter()
        store.update_job_files("bench-job", [(f.name, "skipped", "already processed", None) for f in plan.files])
        statuses_s = time.perf_counter() - started
    results["skip lookup (re-run: fingerprints already stored)"] = {
        "files": len(finished),
        "plan_s": round(lookup_s, 2),
        "driver_mb": None,
    }
    results["job-file statuses written (same before and after)"] = {
        "files": len(plan.files),
        "plan_s": round(statuses_s, 2),
        "driver_mb": None,
    }
    return {"objects": args.objects, "object_kb": args.object_kb, "results": results}


def _calls(count: int, seconds: float) -> list[bytes]:
    from tests.audio_helpers import encode, load_sample

    audio = load_sample("normal_service.ogg")
    out = []
    for i in range(count):
        start = int((i * 0.37) % 20 * 16000)
        cut = np.ascontiguousarray(audio[:, start : start + int(seconds * 16000)])
        out.append(encode(cut, 16000, "wav_pcm16"))
    return out


def bench_throughput(args: argparse.Namespace, server: Any, work: Path, mongo_uri: str) -> dict[str, Any]:
    from batch.job import BatchJob, init_ray
    from pipeline.settings import Settings
    from pipeline.store.store import CallStore

    folder = work / "calls" / DAY
    folder.mkdir(parents=True)
    fs = server.filesystem()
    fs.create_dir("calls")
    for i, data in enumerate(_calls(args.calls, args.call_seconds)):
        (folder / f"call_{i:03d}.wav").write_bytes(data)
        with fs.open_output_stream(f"calls/{DAY}/call_{i:03d}.wav") as out:
            out.write(data)

    def settings_for(database: str) -> Settings:
        return Settings(
            home=work / "home",
            models_dir=REPO / ".cache" / "callaudit" / "models",
            transcribe={"model": "tiny.en", "cpu_threads": 1},
            analysis={"enabled": False},
            store={"mongo_uri": mongo_uri, "database": database},
            batch={"s3_endpoint_url": server.url, "progress_every_s": 30.0},
        )

    init_ray(settings_for("bench_warmup"))
    results: dict[str, Any] = {}
    # A small warm-up job first so neither measured run pays Ray's first start.
    runs = [("warm-up", [str(folder / "call_000.wav")]), ("local", [str(folder)]), ("s3", [f"s3://calls/{DAY}/"])]
    for label, inputs in runs:
        settings = settings_for(f"bench_{label.replace('-', '_')}")
        with CallStore(settings) as store:
            started = time.perf_counter()
            summary = BatchJob(settings, store, on_progress=lambda m: None).run(inputs)
            wall = time.perf_counter() - started
        if label == "warm-up":
            continue
        results[label] = {
            "files": summary.files,
            "ok": summary.ok + summary.empty,
            "wall_s": round(wall, 1),
            "audio_hours_per_hour": round(summary.audio_hours / (wall / 3600), 2),
        }
        print(f"{label}: {results[label]}", file=sys.stderr, flush=True)
    ratio = results["local"]["wall_s"] / results["s3"]["wall_s"]
    return {
        "calls": args.calls,
        "call_seconds": args.call_seconds,
        "results": results,
        "s3_vs_local_speed": round(ratio, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--object-kb", type=int, default=32)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--call-seconds", type=float, default=10.0)
    parser.add_argument("--before", default="df799a8", help="commit whose batch/ is the 'before' planner")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "object_store.json")
    parser.add_argument("--plan-once", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plan_once:
        print(json.dumps(plan_once(args.plan_once, args.source, args.settings)))
        return

    from pipeline.store.embedded import EmbeddedMongo
    from tests.s3_server import CREDENTIALS, S3Server

    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="callaudit-osbench-"))
    server = S3Server(work / "s3").start()
    mongo = EmbeddedMongo(work / "mongo", start_timeout_s=60)
    mongo_uri = mongo.start()
    try:
        out: dict[str, Any] = {"planning": bench_planning(args, server, work, mongo_uri)}
        if not args.skip_throughput:
            out["throughput"] = bench_throughput(args, server, work, mongo_uri)
    finally:
        mongo.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))

    planning = out["planning"]
    print(f"\nPlanning {planning['objects']} recordings ({planning['object_kb']} KB each)")
    print(f"{'variant':52} {'files':>6} {'seconds':>8} {'driver MB':>10}")
    for label, r in planning["results"].items():
        mb = "-" if r["driver_mb"] is None else f"{r['driver_mb']:.0f}"
        print(f"{label:52} {r['files']:6d} {r['plan_s']:8.2f} {mb:>10}")
    if "throughput" in out:
        tp = out["throughput"]
        print(f"\nJob throughput, {tp['calls']} calls x {tp['call_seconds']:.0f} s, tiny.en, analysis off")
        print(f"{'source':8} {'ok':>4} {'wall s':>8} {'audio h/h':>10}")
        for label, r in tp["results"].items():
            print(f"{label:8} {r['ok']:4d} {r['wall_s']:8.1f} {r['audio_hours_per_hour']:10.2f}")
        print(f"\nS3 / local speed: {tp['s3_vs_local_speed']:.2f}x   (written to {args.out})")


if __name__ == "__main__":
    main()
