"""WER of a rubric set's rendered calls: callaudit's cached transcripts vs plain faster-whisper, side by side.

``bench.eval_rubric --audio`` leaves each rendered call (``bench/out/rubric/<set>/audio/<id>-<cond>-<hash>.wav``
with its per-channel reference words in ``.ref.json``) and callaudit's transcript of it (``transcripts/``). This
runs plain faster-whisper on the same files as ``bench.asr_bench`` does (per channel, the call's language
given, beam 5, its VAD, the same model) and prints word-weighted WER per sample rate and language, agent /
customer / both channels, with the same normalisation for both. Plain transcripts are cached next to the audio.

    python -m bench.rubric_wer --set bench/holdout9 [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bench.asr_bench import _hypothesis_plain, word_errors
from bench.eval_rubric import OUT

CHANNELS = ("agent", "customer")
_STEM = re.compile(r"^(?P<id>.+)-(?P<cond>16k|8k)-(?P<hash>[0-9a-f]+)$")


def _items(folder: Path, cache: Path) -> list[dict[str, Any]]:
    items = []
    for ref_path in sorted((cache / "audio").glob("*.ref.json")):
        stem = ref_path.name.removesuffix(".ref.json")
        m = _STEM.match(stem)
        script = folder / f"{m.group('id')}.yaml" if m else None
        if m is None or script is None or not script.exists():
            continue
        ref = json.loads(ref_path.read_text(encoding="utf-8"))
        transcript = cache / "transcripts" / f"{m.group('id')}-{m.group('cond')}-base-{m.group('hash')}.json"
        items.append({
            "id": stem, "cond": m.group("cond"), "path": str(cache / "audio" / f"{stem}.wav"),
            "language": yaml.safe_load(script.read_text(encoding="utf-8"))["language"],
            "references": [ref["reference_text"][c] for c in CHANNELS],
            "transcript": transcript if transcript.exists() else None,
        })
    return items


def _callaudit_texts(path: Path) -> list[str]:
    turns = sorted(json.loads(path.read_text(encoding="utf-8"))["record"]["turns"], key=lambda t: t["index"])
    return [" ".join(t["text"].strip() for t in turns if t["track"] == track) for track in (0, 1)]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", required=True, help="the set's folder of call scripts")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(list(argv) if argv is not None else None)
    folder = Path(args.set)
    cache = OUT / "rubric" / folder.name
    model: Any = None
    totals: dict[tuple[str, str, str, int], list[int]] = {}
    for item in _items(folder, cache):
        if item["transcript"] is None:
            continue
        plain_path = cache / "plain" / f"{item['id']}.json"
        if plain_path.exists():
            plain = json.loads(plain_path.read_text(encoding="utf-8"))["texts"]
        else:
            if model is None:
                from faster_whisper import WhisperModel

                from pipeline.models import resolve_whisper
                from pipeline.settings import Settings

                model = WhisperModel(resolve_whisper("base", Settings().models_cache), device="cpu",
                                     compute_type="int8", cpu_threads=args.threads)
            plain = _hypothesis_plain(model, item)["texts"]
            plain_path.parent.mkdir(parents=True, exist_ok=True)
            plain_path.write_text(json.dumps({"texts": plain}, ensure_ascii=False), encoding="utf-8")
        for system, texts in (("callaudit", _callaudit_texts(item["transcript"])), ("plain", plain)):
            for track, (ref, hyp) in enumerate(zip(item["references"], texts, strict=True)):
                errors, words = word_errors(ref, hyp)
                tally = totals.setdefault((item["cond"], item["language"], system, track), [0, 0])
                tally[0] += errors
                tally[1] += words
    print("| audio | callaudit agent / customer / both | plain faster-whisper agent / customer / both |")
    print("|---|---|---|")
    for cond, language in sorted({(c, lang) for c, lang, _, _ in totals}):
        cells = []
        for system in ("callaudit", "plain"):
            per = [totals[(cond, language, system, track)] for track in (0, 1)]
            wer = [e / max(1, w) for e, w in per] + [sum(e for e, _ in per) / max(1, sum(w for _, w in per))]
            cells.append(" / ".join(f"{v:.3f}" for v in wer))
        print(f"| {cond} {language} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
