"""Load check for the Serve app: N concurrent uploads, latency percentiles for the 202 and for completion.

Starts the app locally (Ray, embedded database, Serve) unless ``--url`` points at a running one,
uploads N distinct copies of a sample call at once (each copy differs by one sample, so none is
answered from the store as "already processed"), polls every task to the end, and reports:

* accept latency: POST sent -> 202 received (what a client waits for);
* completion latency: POST sent -> task done (queueing + decode + transcription + store);
* errors: any non-202 answer, any task that did not end "done", any poll failure.

Prints a table and writes ``bench/out/load_serve-<time>.json``. Exit status 1 if there were errors.

    python -m bench.load_serve -n 8
    python -m bench.load_serve -n 32 --url http://127.0.0.1:8000 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
DEFAULT_SAMPLE = REPO / "samples" / "normal_service.ogg"


@dataclass
class Result:
    index: int
    accept_s: float | None = None
    complete_s: float | None = None
    status: str = "not sent"
    error: str | None = None


@dataclass
class Report:
    n: int
    sample: str
    audio_s_each: float
    started_at: str
    wall_s: float = 0.0
    results: list[Result] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Result]:
        return [r for r in self.results if r.error or r.status != "done"]

    def percentiles(self, name: str) -> dict[str, float | None]:
        values = [getattr(r, name) for r in self.results if getattr(r, name) is not None]
        if not values:
            return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
        arr = np.array(values)
        return {
            "p50": round(float(np.percentile(arr, 50)), 3),
            "p90": round(float(np.percentile(arr, 90)), 3),
            "p99": round(float(np.percentile(arr, 99)), 3),
            "max": round(float(arr.max()), 3),
            "mean": round(statistics.fmean(values), 3),
        }


def distinct_copies(sample: Path, n: int) -> tuple[list[bytes], float]:
    """n WAV files of the sample's audio, each unique (its first sample differs), and their length."""
    from pipeline.audio import decode_audio

    audio, info, _ = decode_audio(sample.read_bytes(), 16_000, 4 * 3600)
    pcm = np.clip(audio.T, -1.0, 1.0)
    pcm16 = (pcm * 32767).astype(np.int16)
    copies = []
    for i in range(n):
        variant = pcm16.copy()
        variant[0, 0] = np.int16(i % 32000)  # the first sample carries the index: copies never collide
        buffer = io.BytesIO()
        sf.write(buffer, variant, 16_000, format="WAV", subtype="PCM_16")
        copies.append(buffer.getvalue())
    return copies, info.duration_s


async def one(
    client: httpx.AsyncClient, index: int, data: bytes, result: Result, timeout_s: float, poll_s: float
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/upload/audio/",
            files={"file": (f"load-{index:03d}.wav", data, "audio/wav")},
            data={"agent_id": f"LOAD{index % 4}"},
        )
    except httpx.HTTPError as err:
        result.error = f"upload: {type(err).__name__}"
        return
    result.accept_s = time.perf_counter() - started
    if response.status_code != 202:
        result.status = f"HTTP {response.status_code}"
        result.error = response.text[:200]
        return
    task_id = response.json()["job_id"]
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        await asyncio.sleep(poll_s)
        try:
            task = (await client.get(f"/jobs/{task_id}")).json()
        except (httpx.HTTPError, ValueError) as err:
            result.error = f"poll: {type(err).__name__}"
            return
        if task["status"] in ("done", "failed"):
            result.complete_s = time.perf_counter() - started
            result.status = task["status"]
            if task["status"] != "done":
                result.error = "; ".join(f.get("reason") or "" for f in task["files"])[:300]
            return
    result.status = "timeout"
    result.error = f"not finished after {timeout_s:.0f} s"


async def run_load(url: str, copies: list[bytes], api_key: str | None, timeout_s: float) -> list[Result]:
    headers = {"X-API-Key": api_key} if api_key else {}
    results = [Result(index=i) for i in range(len(copies))]
    limits = httpx.Limits(max_connections=len(copies) + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120.0, limits=limits) as client:
        await asyncio.gather(*(one(client, i, data, results[i], timeout_s, 0.25) for i, data in enumerate(copies)))
    return results


def table(report: Report) -> str:
    accept, complete = report.percentiles("accept_s"), report.percentiles("complete_s")
    lines = [
        f"{report.n} concurrent uploads of {Path(report.sample).name} ({report.audio_s_each:.0f} s audio each), "
        f"wall {report.wall_s:.1f} s, {len(report.errors)} error(s)",
        f"{'latency (s)':<14}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'mean':>9}",
    ]
    for name, values in (("accept (202)", accept), ("completion", complete)):
        cells = "".join(f"{'-' if v is None else f'{v:.3f}':>9}" for v in values.values())
        lines.append(f"{name:<14}{cells}")
    done = sum(r.status == "done" for r in report.results)
    if report.wall_s:
        lines.append(
            f"throughput: {done / report.wall_s * 60:.1f} calls/min, "
            f"{done * report.audio_s_each / report.wall_s:.1f} s of audio per wall second"
        )
    for r in report.errors[:10]:
        lines.append(f"  error #{r.index}: {r.status} {r.error or ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=8, help="concurrent uploads (default 8)")
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--url", help="a running app; default: start one locally")
    parser.add_argument("--api-key")
    parser.add_argument("--model", default="tiny.en", help="Whisper model of the local app (default tiny.en)")
    parser.add_argument("--analysis", action="store_true", help="run the LLM analysis too (local app)")
    parser.add_argument("--transcribers", type=int, default=1, help="transcriber replicas (local app)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per upload to finish")
    args = parser.parse_args(argv)

    copies, audio_s = distinct_copies(args.sample, args.n)
    report = Report(
        n=args.n,
        sample=str(args.sample.relative_to(REPO) if args.sample.is_relative_to(REPO) else args.sample),
        audio_s_each=audio_s,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    )
    server = None
    url = args.url
    with tempfile.TemporaryDirectory(prefix="callaudit-load-") as home:
        if url is None:
            from pipeline.settings import Settings
            from pipeline.store.embedded import free_port
            from serve_app.launcher import start_local

            settings = Settings(
                home=Path(home),
                models_dir=REPO / ".cache" / "callaudit" / "models",
                transcribe={"model": args.model, "cpu_threads": 1},
                analysis={"enabled": args.analysis},
                serve={"port": free_port(), "transcriber_replicas": args.transcribers},
            )
            print(f"starting the app (model {args.model}, analysis {'on' if args.analysis else 'off'})...", flush=True)
            server = start_local(settings)
            url = server.url
            report.settings = {
                "model": args.model,
                "analysis": args.analysis,
                "transcriber_replicas": args.transcribers,
                "max_concurrent_files": settings.serve.max_concurrent_files,
            }
        try:
            started = time.perf_counter()
            report.results = asyncio.run(run_load(url, copies, args.api_key, args.timeout))
            report.wall_s = time.perf_counter() - started
        finally:
            if server is not None:
                server.stop()

    print(table(report))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"load_serve-{datetime.now():%Y%m%dT%H%M%S}.json"
    payload = {
        **{k: v for k, v in asdict(report).items() if k != "results"},
        "accept_s": report.percentiles("accept_s"),
        "complete_s": report.percentiles("complete_s"),
        "errors": len(report.errors),
        "results": [asdict(r) for r in report.results],
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"written {path.relative_to(REPO)}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
