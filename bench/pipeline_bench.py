"""Benchmark of the single-call pipeline on the shipped sample calls, side by side in one run.

Reports, for the same files and the same Whisper model:
- real-time factor per stage and peak memory of the callaudit pipeline (enhancement off and on);
- transcription speed of the pipeline vs plain faster-whisper (``model.transcribe(file)``, which
  mixes stereo to mono), with and without faster-whisper's own VAD filter;
- WER against the scripts' reference text, with and without DeepFilterNet3 enhancement.

Each configuration runs in its own subprocess so its peak memory (ru_maxrss) is its own; they run
one after another in the same invocation so the numbers are comparable on a noisy machine.

    python -m bench.pipeline_bench [--model base] [--threads 1] [--out bench/out/pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def _normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = _normalise(reference), _normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in {".wav", ".mp3", ".ogg", ".flac", ".m4a"})


def reference_of(path: Path) -> dict[str, Any] | None:
    ref = path.with_name(path.stem + ".ref.json")
    return json.loads(ref.read_text()) if ref.exists() else None


def run_pipeline(model: str, threads: int, enhance: str) -> dict[str, Any]:
    from pipeline.runner import CallPipeline
    from pipeline.settings import Settings

    settings = Settings(
        transcribe={"model": model, "cpu_threads": threads},  # type: ignore[arg-type]
        enhance={"backend": enhance},  # type: ignore[arg-type]
        analysis={"enabled": False},  # type: ignore[arg-type]
    )
    pipe = CallPipeline(settings, analyse=False)
    files: list[dict[str, Any]] = []
    stage_totals: dict[str, float] = {}
    audio_total = 0.0
    started = time.perf_counter()
    for path in sample_files():
        record = pipe.process_file(path)
        audio_total += record.audio.duration_s
        for stage in record.stages:
            stage_totals[stage.stage] = stage_totals.get(stage.stage, 0.0) + stage.seconds
        entry: dict[str, Any] = {"file": path.name, "status": record.status, "duration_s": record.audio.duration_s}
        ref = reference_of(path)
        if ref is not None and record.mode == "stereo":
            by_role = {role: " ".join(t.text for t in record.turns if t.role == role) for role in ("agent", "customer")}
            entry["wer_by_role"] = {r: round(wer(ref["reference_text"].get(r, ""), by_role[r]), 4) for r in by_role}
            entry["wer"] = round(
                wer(
                    " ".join(ref["reference_text"].get(r, "") for r in ("agent", "customer")),
                    " ".join(by_role[r] for r in ("agent", "customer")),
                ),
                4,
            )
        files.append(entry)
    wall = time.perf_counter() - started
    return {
        "config": f"callaudit pipeline, enhance={enhance}",
        "wall_s": round(wall, 2),
        "audio_s": round(audio_total, 2),
        "rtf": round(wall / audio_total, 4) if audio_total else None,
        "stage_rtf": {k: round(v / audio_total, 4) for k, v in stage_totals.items()} if audio_total else {},
        "transcribe_s": round(stage_totals.get("transcribe", 0.0), 2),
        "files": files,
    }


def run_plain(model: str, threads: int, vad: bool) -> dict[str, Any]:
    from faster_whisper import WhisperModel

    from pipeline.models import resolve_whisper
    from pipeline.settings import Settings

    settings = Settings()
    whisper = WhisperModel(
        resolve_whisper(model, settings.models_cache), device="cpu", compute_type="int8", cpu_threads=threads
    )
    files: list[dict[str, Any]] = []
    audio_total = 0.0
    started = time.perf_counter()
    for path in sample_files():
        segments, info = whisper.transcribe(str(path), beam_size=1, vad_filter=vad, word_timestamps=True)
        text = " ".join(s.text.strip() for s in segments)
        audio_total += info.duration
        entry: dict[str, Any] = {"file": path.name, "duration_s": round(info.duration, 2)}
        ref = reference_of(path)
        if ref is not None:
            # Plain faster-whisper mixes the channels, so only the whole-call WER is comparable.
            reference = " ".join(t["text"] for t in sorted(ref["turns"], key=lambda t: t["start"]))
            entry["wer"] = round(wer(reference, text), 4)
        files.append(entry)
    wall = time.perf_counter() - started
    return {
        "config": f"plain faster-whisper, vad_filter={vad}",
        "wall_s": round(wall, 2),
        "audio_s": round(audio_total, 2),
        "rtf": round(wall / audio_total, 4) if audio_total else None,
        "transcribe_s": round(wall, 2),
        "files": files,
    }


CONFIGS = {
    "pipeline": lambda a: run_pipeline(a.model, a.threads, "none"),
    "pipeline_dfn": lambda a: run_pipeline(a.model, a.threads, "deepfilternet"),
    "plain": lambda a: run_plain(a.model, a.threads, vad=False),
    "plain_vad": lambda a: run_plain(a.model, a.threads, vad=True),
}


def _one(args: argparse.Namespace) -> None:
    result = CONFIGS[args.one](args)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def _mean_wer(result: dict[str, Any]) -> float | None:
    values = [f["wer"] for f in result["files"] if "wer" in f]
    return round(sum(values) / len(values), 4) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pipeline.json")
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args)
        return
    results = []
    for name in args.configs:
        command = [sys.executable, "-m", "bench.pipeline_bench", "--one", name, "--model", args.model]
        command += ["--threads", str(args.threads)]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"finished {name}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "threads": args.threads, "results": results}, indent=2))
    base = next((r for r in results if r["config"].startswith("plain faster-whisper, vad_filter=False")), None)
    print(f"\nmodel {args.model}, {args.threads} thread(s), {len(sample_files())} sample calls\n")
    print(f"{'configuration':44} {'wall s':>7} {'RTF':>7} {'speed vs plain':>14} {'mean WER':>9} {'peak MB':>8}")
    for r in results:
        ratio = f"{base['wall_s'] / r['wall_s']:.2f}x" if base and r["wall_s"] else "-"
        mean = _mean_wer(r)
        print(
            f"{r['config']:44} {r['wall_s']:7.1f} {r['rtf']:7.3f} {ratio:>14} "
            f"{'' if mean is None else f'{mean:.3f}':>9} {r['peak_rss_mb']:8.0f}"
        )
    for r in results:
        if "stage_rtf" in r:
            stages = ", ".join(f"{k} {v:.4f}" for k, v in r["stage_rtf"].items())
            print(f"\nper-stage RTF ({r['config']}): {stages}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
