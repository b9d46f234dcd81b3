"""ASR bench on audio nobody tuned for: plain faster-whisper and callaudit side by side, one run.

Sources (see ``bench/asr_manifest.yaml``; audio is assembled at bench time, none is committed):

- ``synth16k`` / ``synth8k``: scripts from bench/devset, holdout, holdout2 rendered by ``bench/synth.py``
  with espeak-ng voices the project never used (odd-numbered and klatt variants, mixed speeds), as a
  clean 16 kHz stereo call and as a noisy (15 dB SNR) band-limited 8 kHz mu-law line;
- ``prompts8k``: real human speech, the Asterisk telephony prompts (Debian ``asterisk-core-sounds-en-wav``,
  Allison Smith, CC-BY-SA-3.0, transcripts from the package's ``core-sounds-en.txt``) joined into mono
  8 kHz IVR recordings, one with music on hold (``asterisk-moh-opsound-wav``) between prompts;
- ``samples``: our own samples/ calls.

Systems, each in its own process (so peak memory is its own), one after the other on the same audio:

- ``plain``: faster-whisper as its README uses it: per channel, language given, beam 5, ``vad_filter``;
- ``old``: callaudit's code and defaults before issue 11 (``git archive`` of ``--old-rev`` into the temp folder);
- ``new``: this checkout's code and defaults; more variants with ``--variant NAME='{"beam_size": 1}'``
  (``"metadata_language": true`` gives callaudit each call's language as metadata, as plain is given it).

WER: both sides normalised the same way (lower case, punctuation out, digits spelled as words), summed
over a source (errors / reference words). Names: share of company / agent names in the script that
appear in the agent channel's transcript. Speed: audio seconds per wall second of the whole ASR part
(decode, VAD, transcription), same model, same threads.

    python -m bench.asr_bench [--systems plain,old,new] [--sources synth16k,synth8k,prompts8k,samples]
        [--variant NAME=JSON] [--fresh]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("asr_manifest.yaml")
OUT = REPO / "bench" / "out" / "asr"
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
MOH_DIR = Path("/usr/share/asterisk/moh")
SOURCES = ("synth16k", "synth8k", "prompts8k", "samples")
COLUMNS = ("synth16k", "synth8k", "synth16k-tr", "synth8k-tr", "prompts8k", "samples")

_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()  # noqa: SIM905


def _spell(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        return _TENS[number // 10] + ("" if number % 10 == 0 else " " + _ONES[number % 10])
    if number < 1000:
        rest = number % 100
        return _ONES[number // 100] + " hundred" + ("" if rest == 0 else " " + _spell(rest))
    return " ".join(_ONES[int(d)] for d in str(number))  # long numbers are read digit by digit on calls


def normalise(text: str) -> str:
    """Lower case, digits spelled out, punctuation dropped (same for reference and every system)."""
    text = text.lower().replace("-", " ").replace("%", " percent")
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: f" {_spell(int(m.group()))} ", text)
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return re.sub(r"\s+", " ", text).strip()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words) after normalisation."""
    import jiwer

    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return len(hyp.split()), 0
    out = jiwer.process_words(ref, hyp or "<empty>")
    return out.substitutions + out.deletions + out.insertions, len(ref.split())


# ------------------------------------------------------------------------------------- assembling audio


def _manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text(encoding="utf-8")))


def _asterisk_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if ":" in line and not line.startswith(";"):
            key, _, text = line.partition(":")
            texts[key.strip()] = " ".join(text.split())
    return texts


def _read_mono16k(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    return np.asarray(decode_audio(str(path), sampling_rate=16000), np.float32)


def assemble(sources: list[str]) -> list[dict[str, Any]]:
    """Render / assemble every item of the chosen sources under bench/out/asr/audio (cached)."""
    manifest = _manifest()
    audio_dir = OUT / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, Any]] = []
    if "synth16k" in sources or "synth8k" in sources:
        items += _synth_items(manifest, audio_dir, sources)
    if "prompts8k" in sources:
        items += _prompt_items(manifest, audio_dir)
    if "samples" in sources:
        for ref_path in sorted((REPO / "samples").glob("*.ref.json")):
            ref = json.loads(ref_path.read_text(encoding="utf-8"))
            audio = next(
                (p for p in ref_path.parent.glob(ref_path.name.replace(".ref.json", ".*")) if p.suffix != ".json"), None
            )
            if audio is None:
                continue
            channels = ref.get("channels")
            texts = ref.get("reference_text") or {}
            refs = (
                [texts.get("agent", ""), texts.get("customer", "")]
                if channels
                else [" ".join(t["text"] for t in sorted(ref["turns"], key=lambda t: t["start"]))]
            )
            script_path = REPO / "samples" / "scripts" / f"{audio.stem}.yaml"
            script = yaml.safe_load(script_path.read_text(encoding="utf-8")) if script_path.exists() else {}
            extra = {k: str(script[k]) for k in ("company", "agent_name") if script.get(k)}
            items.append(
                {
                    "id": f"samples/{audio.stem}",
                    "source": "samples",
                    "path": str(audio),
                    "language": ref.get("language", "en"),
                    "references": refs,
                    "names": list(extra.values()),
                    "extra": extra,
                }
            )
    return items


def _synth_items(manifest: dict[str, Any], audio_dir: Path, sources: list[str]) -> list[dict[str, Any]]:
    from bench.synth import CallScript, RenderOptions, VoiceSpec, render_call, write_call

    items: list[dict[str, Any]] = []
    pairs = manifest["synth"]["voices"]
    for n, entry in enumerate(manifest["synth"]["scripts"]):
        script = CallScript.load(REPO / entry)
        pair = pairs[script.language][n % len(pairs[script.language])]
        voices = {"agent": VoiceSpec.parse(pair[0]), "customer": VoiceSpec.parse(pair[1])}
        for source, opts in (
            ("synth16k", RenderOptions(fmt="wav", name=f"{script.id}-16k")),
            (
                "synth8k",
                RenderOptions(fmt="mulaw8k", noise_snr_db=15.0, telephone=True, name=f"{script.id}-8k", seed=1),
            ),
        ):
            if source not in sources:
                continue
            path = audio_dir / f"{opts.name}.wav"
            if not path.exists():
                write_call(render_call(script, opts, voices), audio_dir)
            names = [n for n in (script.company, script.agent_name) if n]
            extra = {k: v for k, v in (("company", script.company), ("agent_name", script.agent_name)) if v}
            texts = json.loads(path.with_name(f"{opts.name}.ref.json").read_text(encoding="utf-8"))["reference_text"]
            items.append(
                {
                    "id": f"{source}/{script.id}",
                    "source": source,
                    "path": str(path),
                    "language": script.language,
                    "references": [texts["agent"], texts["customer"]],
                    "names": names,
                    "extra": extra,
                    "voices": [str(v) for v in voices.values()],
                }
            )
    return items


def _prompt_items(manifest: dict[str, Any], audio_dir: Path) -> list[dict[str, Any]]:
    import soundfile as sf

    if not ASTERISK_TEXT.exists():
        print("prompts8k skipped: apt-get install asterisk-core-sounds-en-wav", file=sys.stderr)
        return []
    texts = _asterisk_texts()
    items: list[dict[str, Any]] = []
    rng = np.random.default_rng(11)
    for name, spec in manifest["prompts"].items():
        path = audio_dir / f"prompts-{name}.wav"
        keys = list(spec["prompts"])
        if not path.exists():
            pieces: list[np.ndarray] = [np.zeros(8000, np.float32)]
            for key in keys:
                audio, rate = sf.read(ASTERISK_DIR / f"{key}.wav", dtype="float32")
                assert rate == 8000, f"{key}: {rate} Hz"
                pieces.append(audio)
                gap = np.zeros(int(8000 * rng.uniform(1.0, 2.5)), np.float32)
                if spec.get("hold_music"):  # music on hold between prompts, as an IVR queue plays it
                    music, music_rate = sf.read(MOH_DIR / spec["hold_music"], dtype="float32")
                    assert music_rate == 8000
                    start = int(rng.integers(0, max(1, music.size - 8000 * 8)))
                    gap = 0.5 * music[start : start + 8000 * int(rng.integers(4, 8))]
                pieces.append(gap)
            line = np.concatenate(pieces) + rng.normal(0, 10 ** (-60 / 20), sum(p.size for p in pieces)).astype(
                np.float32
            )
            sf.write(path, np.clip(line, -1, 1), 8000, subtype="PCM_16")
        reference = " ".join(texts[k] for k in keys)
        items.append(
            {
                "id": f"prompts8k/{name}",
                "source": "prompts8k",
                "path": str(path),
                "language": "en",
                "references": [reference],
                "names": list(spec.get("names", [])),
                "extra": {},
            }
        )
    return items


# ----------------------------------------------------------------------------------------- the systems


def _hypothesis_plain(model: Any, item: dict[str, Any]) -> dict[str, Any]:
    from faster_whisper import decode_audio

    stereo = len(item["references"]) == 2
    audio = decode_audio(item["path"], sampling_rate=16000, split_stereo=stereo)
    channels = list(audio) if stereo else [audio]
    texts = []
    for channel in channels:
        segments, _ = model.transcribe(channel, language=item["language"], beam_size=5, vad_filter=True)
        texts.append(" ".join(s.text.strip() for s in segments))
    return {"texts": texts, "language": item["language"]}


def _hypothesis_callaudit(pipe: Any, item: dict[str, Any], metadata_language: bool = False) -> dict[str, Any]:
    from pipeline.records import CallMetadata

    extra = dict(item["extra"]) | ({"language": item["language"]} if metadata_language else {})
    record = pipe.process_file(item["path"], metadata=CallMetadata(extra=extra))
    texts = [" ".join(s.text for s in track.segments) for track in record.tracks]
    if len(item["references"]) == 1:
        texts = [" ".join(t.text for t in record.turns)]
    languages = [track.language for track in record.tracks if getattr(track, "language", None)]
    stage = next((s for s in record.stages if s.stage == "transcribe"), None)
    return {
        "texts": texts,
        "language": record.language,
        "track_languages": languages,
        "language_probability": record.language_probability,
        "transcribe_detail": stage.detail if stage is not None else {},
        "transcribe_s": stage.seconds if stage is not None else None,
    }


def run_system(system: str, overrides: dict[str, Any], items: list[dict[str, Any]], cache_dir: Path) -> dict[str, Any]:
    """Child process: load the system once, transcribe every item, return per-item results + peak RSS."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if system == "plain":
        from faster_whisper import WhisperModel

        from pipeline.models import resolve_whisper
        from pipeline.settings import Settings

        settings = Settings()
        model = WhisperModel(
            resolve_whisper(overrides.get("model", "base"), settings.models_cache),
            device="cpu",
            compute_type="int8",
            cpu_threads=int(overrides.get("cpu_threads", 0)),
        )

        def transcribe(item: dict[str, Any]) -> dict[str, Any]:
            return _hypothesis_plain(model, item)
    else:
        from pipeline.runner import CallPipeline
        from pipeline.settings import Settings

        overrides = dict(overrides)
        metadata_language = bool(overrides.pop("metadata_language", False))  # the manifest's language as metadata
        vad = dict(overrides.pop("vad", {}))  # VAD settings ("vad": {"threshold": 0.35})
        settings = Settings(
            vad=vad,
            transcribe={"model": "base", **overrides},
            diarize={"backend": "none"},
            enhance={"backend": "none"},
            analysis={"enabled": False},
        )
        pipe = CallPipeline(settings, analyse=False)

        def transcribe(item: dict[str, Any]) -> dict[str, Any]:
            return _hypothesis_callaudit(pipe, item, metadata_language)

    load_s = time.perf_counter() - started
    results = []
    for item in items:
        cached = cache_dir / (item["id"].replace("/", "__") + ".json")
        if cached.exists():
            results.append(json.loads(cached.read_text()))
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        out = transcribe(item)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["cpu_seconds"] = round(time.process_time() - c0, 3)  # all threads: steadier on a shared machine
        out["id"] = item["id"]
        cached.write_text(json.dumps(out, ensure_ascii=False))
        results.append(out)
    return {
        "system": system,
        "load_s": round(load_s, 2),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "results": results,
    }


def language_check(items: list[dict[str, Any]], languages: list[str]) -> dict[str, Any]:
    """Per-channel language detection only (decode, VAD, detect): right calls and channels."""
    from pipeline.audio import Decoder
    from pipeline.settings import Settings
    from pipeline.transcribe import Transcriber
    from pipeline.vad import VoiceActivityDetector

    settings = Settings(transcribe={"model": "base", "languages": languages}, diarize={"backend": "none"})
    decoder, vad, transcriber = Decoder(settings), VoiceActivityDetector(settings), Transcriber(settings)
    wrong: list[str] = []
    calls = channels = right_channels = 0
    for item in items:
        state = vad.run(decoder.decode(item["path"]))
        if not any(t.speech_regions for t in state.record.tracks):
            continue
        found = transcriber.track_languages(state)
        calls += 1
        channels += len(found)
        right_channels += sum(code == item["language"] for code, _ in found.values())
        if any(code != item["language"] for code, _ in found.values()):
            wrong.append(f"{item['id']}: {[(c, round(p, 2)) for c, p in found.values()]}")
    return {"languages": languages or "any", "calls": calls, "calls_wrong": len(wrong),
            "channels_right": f"{right_channels}/{channels}", "wrong": wrong}  # fmt: skip


def _old_code(rev: str) -> Path:
    """The pipeline package as it was at `rev`, unpacked under bench/out (for the 'old' system)."""
    target = Path(tempfile.gettempdir()) / f"callaudit-asr-bench-code-{rev}"  # outside the repo: mypy scans bench/
    if not (target / "pipeline").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "pipeline"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _duration(path: str) -> float:
    import soundfile as sf

    try:
        return float(sf.info(path).duration)
    except RuntimeError:
        from faster_whisper import decode_audio

        return len(decode_audio(path, sampling_rate=16000)) / 16000


def score(items: list[dict[str, Any]], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    by_id = {item["id"]: item for item in items}
    table: dict[str, Any] = {}
    for system, run in runs.items():
        per_source: dict[str, dict[str, float]] = {}
        for res in run["results"]:
            item = by_id[res["id"]]
            acc = per_source.setdefault(
                item["source"] + ("-tr" if item["language"] == "tr" else ""),
                {
                    "errors": 0,
                    "words": 0,
                    "seconds": 0.0,
                    "cpu_seconds": 0.0,
                    "audio_s": 0.0,
                    "names": 0,
                    "names_found": 0,
                    "calls": 0,
                    "lang_ok": 0,
                },
            )
            for ref, hyp in zip(item["references"], res["texts"], strict=False):
                errors, words = word_errors(ref, hyp)
                acc["errors"] += errors
                acc["words"] += words
            agent_text = " " + normalise(res["texts"][0]) + " " if res["texts"] else ""
            for name in item["names"]:
                acc["names"] += 1
                acc["names_found"] += f" {normalise(name)} " in agent_text
            acc["seconds"] += res["seconds"]
            acc["cpu_seconds"] += res.get("cpu_seconds", float("nan"))
            acc["audio_s"] += item["duration_s"]
            acc["calls"] += 1
            acc["lang_ok"] += res.get("language") == item["language"]
        table[system] = {
            source: {
                "wer": round(a["errors"] / max(1, a["words"]), 4),
                "x_realtime": round(a["audio_s"] / max(a["seconds"], 1e-9), 2),
                "x_realtime_cpu": round(a["audio_s"] / max(a["cpu_seconds"], 1e-9), 2),
                "names": f"{int(a['names_found'])}/{int(a['names'])}",
                "language_right": f"{int(a['lang_ok'])}/{int(a['calls'])}",
                "calls": int(a["calls"]),
                "audio_s": round(a["audio_s"], 1),
            }
            for source, a in per_source.items()
        }
        total_audio = sum(a["audio_s"] for a in per_source.values())
        total_s = sum(a["seconds"] for a in per_source.values())
        total_cpu = sum(a["cpu_seconds"] for a in per_source.values())
        table[system]["all"] = {
            "x_realtime": round(total_audio / max(total_s, 1e-9), 2),
            "x_realtime_cpu": round(total_audio / max(total_cpu, 1e-9), 2),
            "peak_rss_mb": round(run["peak_rss_mb"]),
            "load_s": run["load_s"],
        }
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.asr_bench", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--systems", default="plain,old,new")
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--variant", action="append", default=[],
                   help='NAME=JSON transcribe overrides on the new code ("vad": {...} for the VAD settings)')
    p.add_argument("--old-rev", default="0207fee", help="git revision whose pipeline/ is the 'old' system")
    p.add_argument("--only", default=None, help="regex on item ids")
    p.add_argument("--limit", type=int, default=None, help="at most this many calls per source (the first ones)")
    p.add_argument("--fresh", action="store_true", help="ignore cached transcripts")
    p.add_argument("--languages", default=None, help="only check language detection, e.g. 'en,tr' or 'any'")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:  # --child SYSTEM with a JSON job on stdin
        job = json.loads(sys.stdin.read())
        result = run_system(args.child, job["overrides"], job["items"], Path(job["cache_dir"]))
        print("\n@@RESULT@@" + json.dumps(result, ensure_ascii=False))
        return 0

    items = assemble(args.sources.split(","))
    if args.only:
        items = [i for i in items if re.search(args.only, i["id"])]
    if args.limit is not None:
        per_source: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            per_source.setdefault(item["source"] + item["language"], []).append(item)
        items = [i for group in per_source.values() for i in group[: args.limit]]
    for item in items:
        item["duration_s"] = round(_duration(item["path"]), 3)
    if args.languages:
        allowed = [] if args.languages == "any" else args.languages.split(",")
        print(json.dumps(language_check(items, allowed), indent=1, ensure_ascii=False))
        return 0
    variants: dict[str, dict[str, Any]] = {"plain": {}, "old": {}, "new": {}}
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[name] = json.loads(overrides)
    systems = args.systems.split(",") + [
        n for n in variants if n not in ("plain", "old", "new") and n not in args.systems
    ]
    runs: dict[str, dict[str, Any]] = {}
    for system in systems:
        overrides = variants.get(system, {})
        key = re.sub(r"[^\w]+", "_", json.dumps(overrides, sort_keys=True)).strip("_")[:80]
        cache_dir = OUT / "cache" / f"{system}{'-' + args.old_rev if system == 'old' else ''}-{key or 'defaults'}"
        if args.fresh and cache_dir.exists():
            for f in cache_dir.glob("*.json"):
                f.unlink()
        env = dict(os.environ)
        env["PYTHONPATH"] = str(_old_code(args.old_rev)) + os.pathsep + str(REPO) if system == "old" else str(REPO)
        kind = "plain" if system == "plain" else "callaudit"
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.asr_bench", "--child", kind],
            cwd=REPO,
            env=env,
            text=True,
            input=json.dumps({"overrides": overrides, "items": items, "cache_dir": str(cache_dir)}),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{system} failed")
        runs[system] = json.loads(proc.stdout.split("@@RESULT@@", 1)[1])
        print(f"{system}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    table = score(items, runs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "asr_bench.json").write_text(
        json.dumps({"table": table, "runs": runs, "items": items}, indent=1, ensure_ascii=False)
    )
    sources = [s for s in COLUMNS if any(s in row for row in table.values())]
    print(
        "| system | "
        + " | ".join(f"{s}: WER, names, language" for s in sources)
        + " | x real time (wall / CPU) | peak RSS MB |"
    )
    print("|---" * (len(sources) + 3) + "|")
    for system, row in table.items():
        cells = [
            f"{row[s]['wer']:.3f}, {row[s]['names']}, {row[s]['language_right']}" if s in row else "-" for s in sources
        ]
        speed = f"{row['all']['x_realtime']:.2f} / {row['all']['x_realtime_cpu']:.2f}"
        print(f"| {system} | " + " | ".join(cells) + f" | {speed} | {row['all']['peak_rss_mb']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
