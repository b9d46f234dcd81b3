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
        transcribe={"model": model, "cpu_threads": threads},
        enhance={"backend": enhance},
        analysis={"enabled": False},
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


def run_interleaved(model: str, threads: int, rounds: int) -> dict[str, Any]:
    """Speed and WER side by side: for each file, every configuration runs back to back, sharing
    one WhisperModel, so load changes on a shared machine hit all of them alike."""
    from pipeline.runner import CallPipeline
    from pipeline.settings import Settings

    def settings(enhance: str) -> Settings:
        return Settings(
            transcribe={"model": model, "cpu_threads": threads},
            enhance={"backend": enhance},
            analysis={"enabled": False},
        )

    plain_pipe = CallPipeline(settings("none"), analyse=False)
    dfn_pipe = CallPipeline(settings("deepfilternet"), analyse=False)
    dfn_pipe.replace_stage("transcribe", plain_pipe.stage("transcribe"))  # the same Transcriber and model
    whisper = plain_pipe.stage("transcribe").model  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for _ in range(rounds):
        for path in sample_files():
            ref = reference_of(path)
            row: dict[str, Any] = {"file": path.name}
            for name, pipe in (("pipeline", plain_pipe), ("pipeline_dfn", dfn_pipe)):
                started = time.perf_counter()
                record = pipe.process_file(path)
                row[f"{name}_s"] = time.perf_counter() - started
                row["duration_s"] = record.audio.duration_s
                row[f"{name}_stages"] = {s.stage: s.seconds for s in record.stages}
                if ref is not None:
                    by_role = {r: " ".join(t.text for t in record.turns if t.role == r) for r in ("agent", "customer")}
                    row[f"{name}_wer"] = wer(_ordered_reference(ref), " ".join(t.text for t in record.turns))
                    if record.mode == "stereo":
                        row[f"{name}_wer_by_role"] = {
                            r: round(wer(ref["reference_text"].get(r, ""), by_role[r]), 4) for r in by_role
                        }
            for name, vad in (("plain", False), ("plain_vad", True)):
                started = time.perf_counter()
                segments, _ = whisper.transcribe(str(path), beam_size=1, vad_filter=vad, word_timestamps=True)
                text = " ".join(s.text.strip() for s in segments)
                row[f"{name}_s"] = time.perf_counter() - started
                if ref is not None:
                    row[f"{name}_wer"] = wer(_ordered_reference(ref), text)
            rows.append(row)
    return {"rows": rows}


def _ordered_reference(ref: dict[str, Any]) -> str:
    return " ".join(t["text"] for t in sorted(ref["turns"], key=lambda t: t["start"]))


CONFIGS = {
    "pipeline": lambda a: run_pipeline(a.model, a.threads, "none"),
    "pipeline_dfn": lambda a: run_pipeline(a.model, a.threads, "deepfilternet"),
    "plain": lambda a: run_plain(a.model, a.threads, vad=False),
    "interleaved": lambda a: run_interleaved(a.model, a.threads, a.rounds),
}


def _one(args: argparse.Namespace) -> None:
    result = CONFIGS[args.one](args)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def _subprocess(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.pipeline_bench", "--one", name, "--model", args.model]
    command += ["--threads", str(args.threads), "--rounds", str(args.rounds)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    print(f"finished {name}", file=sys.stderr, flush=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the samples in the interleaved run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pipeline.json")
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args)
        return
    interleaved = _subprocess("interleaved", args)
    memory = {name: _subprocess(name, args) for name in ("pipeline", "pipeline_dfn", "plain")}
    rows = interleaved["rows"]
    audio = sum(r["duration_s"] for r in rows)
    configs = ("plain", "plain_vad", "pipeline", "pipeline_dfn")
    totals = {c: sum(r[f"{c}_s"] for r in rows) for c in configs}
    english = [r for r in rows if f"{configs[0]}_wer" in r]
    mean_wer = {c: sum(r[f"{c}_wer"] for r in english) / len(english) for c in configs}
    role_wer = {
        c: {
            role: sum(r[f"{c}_wer_by_role"][role] for r in rows if f"{c}_wer_by_role" in r)
            / max(1, sum(1 for r in rows if f"{c}_wer_by_role" in r))
            for role in ("agent", "customer")
        }
        for c in ("pipeline", "pipeline_dfn")
    }
    stage_rtf = {
        c: {
            k: sum(r[f"{c}_stages"].get(k, 0.0) for r in rows) / audio
            for k in sorted({k for r in rows for k in r[f"{c}_stages"]})
        }
        for c in ("pipeline", "pipeline_dfn")
    }
    # plain and plain_vad share one process (same model, same memory).
    peak = {c: memory["plain" if c.startswith("plain") else c]["peak_rss_mb"] for c in configs}
    report = {
        "model": args.model, "threads": args.threads, "files": len(rows), "audio_s": round(audio, 1),
        "wall_s": {c: round(v, 2) for c, v in totals.items()},
        "rtf": {c: round(v / audio, 4) for c, v in totals.items()},
        "mean_wer": {c: round(v, 4) for c, v in mean_wer.items()},
        "pipeline_wer_by_role": role_wer, "stage_rtf": stage_rtf, "peak_rss_mb": peak, "rows": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))
    labels = {
        "plain": "plain faster-whisper (stereo mixed to mono)",
        "plain_vad": "plain faster-whisper, vad_filter=True",
        "pipeline": "callaudit pipeline, enhance=none",
        "pipeline_dfn": "callaudit pipeline, enhance=deepfilternet",
    }
    print(f"\nWhisper {args.model}, {args.threads} thread(s), {len(rows)} recordings, {audio / 60:.1f} min of audio")
    print("(speed and WER interleaved per file in one process; peak memory from one process per config)\n")
    print(f"{'configuration':44} {'wall s':>7} {'RTF':>7} {'vs plain':>9} {'WER':>7} {'peak MB':>8}")
    for c in configs:
        print(
            f"{labels[c]:44} {totals[c]:7.1f} {totals[c] / audio:7.3f} {totals['plain'] / totals[c]:8.2f}x "
            f"{mean_wer[c]:7.3f} {peak[c]:8.0f}"
        )
    for c in ("pipeline", "pipeline_dfn"):
        print(f"\nper-stage RTF, {labels[c]}: " + ", ".join(f"{k} {v:.4f}" for k, v in stage_rtf[c].items()))
        print(f"WER by role, {labels[c]}: " + ", ".join(f"{k} {v:.3f}" for k, v in role_wer[c].items()))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
