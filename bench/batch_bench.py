"""Ray Data batch job vs a plain sequential loop over the same stages, same files, one run.

The shipped sample calls are replicated (each copy cut at a slightly different point, so every file
has its own audio hash) until the set holds at least ``--minutes`` of audio. Both runs use the same
settings (Whisper model, threads per transcriber, no LLM unless ``--analysis``); the Ray run writes
to a fresh embedded database like the real job does.

Measured for each run: wall time, audio hours per hour, machine CPU utilisation (from /proc/stat,
so Ray's worker processes count) and peak memory in use on the machine above the idle baseline
(MemTotal - MemAvailable, sampled every 0.2 s), which covers Ray's workers and object store too.

    python -m bench.batch_bench [--minutes 30] [--model base] [--out bench/out/batch.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
AUDIO = {".wav", ".mp3", ".ogg", ".flac", ".m4a"}


class MachineSampler:
    """Samples machine-wide CPU busy time and memory in use while a run goes on."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.baseline_mb = self._used_mb()
        self.peak_mb = self.baseline_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._cpu_start = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[float, float]:
        fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    @staticmethod
    def _used_mb() -> float:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            info[key] = float(value.split()[0])
        return (info["MemTotal"] - info["MemAvailable"]) / 1024

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, self._used_mb())

    def __enter__(self) -> MachineSampler:
        self._cpu_start = self._cpu_times()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        busy_end, total_end = self._cpu_times()
        busy = busy_end - self._cpu_start[0]
        total = total_end - self._cpu_start[1]
        self.cpu_utilisation = busy / total if total else 0.0

    def report(self) -> dict[str, float]:
        return {
            "cpu_utilisation": round(self.cpu_utilisation, 3),
            "peak_memory_mb": round(self.peak_mb - self.baseline_mb, 1),
        }


def build_corpus(folder: Path, minutes: float) -> tuple[list[Path], float]:
    import soundfile as sf

    from pipeline.audio import decode_audio

    folder.mkdir(parents=True, exist_ok=True)
    sources = [p for p in sorted(SAMPLES.iterdir()) if p.suffix in AUDIO]
    decoded = [decode_audio(p.read_bytes(), 16000, 7200)[0] for p in sources]
    files, total, copy = [], 0.0, 0
    while total < minutes * 60:
        for source, audio in zip(sources, decoded, strict=True):
            start = int(copy * 0.25 * 16000)
            cut = np.ascontiguousarray(audio[:, start:])
            target = folder / f"{source.stem}_{copy:03d}.wav"
            sf.write(target, cut.T, 16000, subtype="PCM_16")
            files.append(target)
            total += cut.shape[1] / 16000
        copy += 1
    return files, total


def run_sequential(files: list[Path], settings_json: str) -> dict[str, Any]:
    from pipeline.runner import CallPipeline
    from pipeline.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    with MachineSampler() as sampler:
        started = time.perf_counter()
        pipe = CallPipeline(settings, analyse=settings.analysis.enabled)
        records = [pipe.process_file(f) for f in files]
        wall = time.perf_counter() - started
    return {"wall_s": wall, "ok": sum(r.status != "failed" for r in records), **sampler.report()}


def run_ray(files: list[Path], settings_json: str) -> dict[str, Any]:
    from batch.job import BatchJob
    from pipeline.settings import Settings
    from pipeline.store import CallStore

    settings = Settings.model_validate_json(settings_json)
    with MachineSampler() as sampler:
        started = time.perf_counter()
        with CallStore(settings) as store:
            summary = BatchJob(settings, store).run([str(f) for f in files], reprocess=True)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "ok": summary.ok + summary.empty, **sampler.report()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per Whisper instance")
    parser.add_argument("--transcribers", type=int, default=2, help="transcription actors in the Ray run")
    parser.add_argument("--analysis", action="store_true", help="include the LLM stage in both runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "batch.json")
    parser.add_argument("--one", choices=["sequential", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        files = [Path(line) for line in args.files.read_text().splitlines()]
        runner = run_sequential if args.one == "sequential" else run_ray
        print(json.dumps(runner(files, args.settings)))
        return

    from pipeline.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="callaudit-bench-"))
    try:
        files, audio_s = build_corpus(work / "calls", args.minutes)
        listing = work / "files.txt"
        listing.write_text("\n".join(str(f) for f in files))
        transcribe_cpus = round(1.5 / args.transcribers, 2)
        settings = Settings(
            home=work / "home",
            models_dir=REPO / ".cache" / "callaudit" / "models",
            transcribe={"model": args.model, "cpu_threads": args.threads},
            analysis={"enabled": args.analysis},
            batch={
                "transcribe_pool": (args.transcribers, args.transcribers),
                "transcribe_cpus": transcribe_cpus,
                "audio_cpus": 0.25,
                "decode_cpus": 0.25,
            },
        )
        results = {}
        for mode in ("sequential", "ray"):
            command = [sys.executable, "-m", "bench.batch_bench", "--one", mode, "--files", str(listing)]
            command += ["--settings", settings.model_dump_json()]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{mode} run failed:\n{done.stderr[-4000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["audio_hours_per_hour"] = round(audio_s / 3600 / (result["wall_s"] / 3600), 2)
            results[mode] = result
            print(f"finished {mode}: {result}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = results["sequential"]["wall_s"] / results["ray"]["wall_s"]
    out = {
        "files": len(files),
        "audio_minutes": round(audio_s / 60, 1),
        "model": args.model,
        "threads_per_transcriber": args.threads,
        "ray_transcribers": args.transcribers,
        "analysis": args.analysis,
        "results": results,
        "throughput_ratio_ray_vs_sequential": round(ratio, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"\n{len(files)} files, {audio_s / 60:.1f} min of audio, Whisper {args.model}\n")
    print(f"{'run':12} {'wall s':>8} {'audio h/h':>10} {'CPU util':>9} {'peak MB':>8}")
    for mode, r in results.items():
        print(
            f"{mode:12} {r['wall_s']:8.1f} {r['audio_hours_per_hour']:10.2f} "
            f"{r['cpu_utilisation'] * 100:8.0f}% {r['peak_memory_mb']:8.0f}"
        )
    print(f"\nRay Data / sequential throughput: {ratio:.2f}x   (written to {args.out})")


if __name__ == "__main__":
    main()
