"""LLM cost per call: seconds, prompt / cached / completion tokens, on short and long calls of shipped sets.

Every call goes through the real analysis stage (PII redaction, transcript, schema, the embedded model
on one thread); a recording wrapper around the backend keeps each LLM request's cost and answer.

    python -m bench.llm_cost                        # default settings, 4 short + 2 long calls
    python -m bench.llm_cost --short 6 --long 3 --json bench/out/llm_cost.json
    python -m bench.llm_cost --compare before='{"llm": {"embedded_ubatch": 512}}' after='{}'

``--compare NAME=JSON ...`` runs several variants side by side in one run: each variant has its own
model instance (own KV cache) and the variants take turns call by call, so load on the machine hits
them alike. JSON holds Settings overrides ({"llm": {...}, "analysis": {...}}). Short = under 90 s of
speech, long = 150 s or more (the sets' text turned into a timed record as in ``bench.eval_rubric``).
``--dump`` writes every answer and its choice probabilities (to check that a change keeps them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.eval_rubric import Call, load_set, text_record
from pipeline.analysis.llm import LLMBackend, LLMUsage, make_backend
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETS = ("bench/holdout4", "bench/holdout3")
SHORT_S, LONG_S = 90.0, 150.0


def rss_mib(key: str = "VmRSS") -> float:
    """This process's resident memory (``VmHWM``: its peak) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Recording(LLMBackend):
    """Passes every request to the real backend and keeps what it cost and answered."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[dict[str, Any], LLMUsage, float]] = []  # answer, cost, CPU seconds

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        cpu = time.process_time()
        value, usage = self.inner.complete_json(system, user, schema, tier)
        self.calls.append((value, usage, time.process_time() - cpu))
        return value, usage

    def model_for(self, tier: str) -> str:
        return self.inner.model_for(tier)

    def warm(self, system: str) -> None:
        self.inner.warm(system)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Row:
    call: str
    kind: str  # short / long
    turns: int
    audio_s: float
    seconds: float = 0.0  # LLM wall seconds of the call (all requests, repair included)
    cpu_s: float = 0.0  # CPU seconds of this process during them (the number to trust on a busy machine)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)


def pick_calls(sets: Iterable[str], short: int, long: int) -> list[tuple[Call, str]]:
    """``short`` calls under 90 s and ``long`` calls of 150 s or more, taken in turn from each set."""
    per_set = []
    for folder in sets:
        calls, _ = load_set(REPO / folder if not Path(folder).is_absolute() else Path(folder))
        timed = [(c, max((t.end for t in text_record(c).turns), default=0.0)) for c in calls]
        per_set.append(([c for c, s in timed if s < SHORT_S and len(c.turns) >= 8],
                        sorted([c for c, s in timed if s >= LONG_S], key=lambda c: -len(c.turns))))
    chosen: list[tuple[Call, str]] = []
    for kind, want, index in (("short", short, 0), ("long", long, 1)):
        pools = [list(p[index]) for p in per_set]
        while want > 0 and any(pools):
            for pool in pools:
                if pool and want > 0:
                    chosen.append((pool.pop(0), kind))
                    want -= 1
    return chosen


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, Mapping) else value
    return out


def build(name: str, overrides: Mapping[str, Any], home: Path, threads: int) -> tuple[Any, Recording, float]:
    from pipeline.analysis.analyser import Analyser

    values = merge({"llm": {"backend": "embedded", "embedded_threads": threads},
                    "models_dir": str(REPO / ".cache" / "callaudit" / "models")}, overrides)
    settings = Settings(home=home / name, **values)
    before = rss_mib()
    backend = Recording(make_backend(settings))
    analyser = Analyser(settings, backend=backend)
    analyser.warm_up()
    return analyser, backend, rss_mib() - before


def run_call(analyser: Any, backend: Recording, call: Call, kind: str) -> Row:
    from pipeline.stage import CallState

    record = text_record(call)
    row = Row(call=call.id, kind=kind, turns=len(record.turns), audio_s=max((t.end for t in record.turns), default=0))
    backend.calls.clear()
    analyser.run(CallState(record=record))
    for value, usage, cpu in backend.calls:
        row.seconds += usage.seconds
        row.cpu_s += cpu
        row.prompt_tokens += usage.prompt_tokens
        row.cached_tokens += usage.cached_tokens
        row.completion_tokens += usage.completion_tokens
        row.requests += 1
        row.answers.append({"value": value, "choice_probs": usage.choice_probs})
    return row


def summary(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("short", "long"):
        mine = [r for r in rows if r.kind == kind]
        if not mine:
            continue
        out[kind] = {
            "calls": len(mine),
            "turns": statistics.median(r.turns for r in mine),
            "audio_s": round(statistics.median(r.audio_s for r in mine), 1),
            "cpu_s_median": round(statistics.median(r.cpu_s for r in mine), 2),
            "cpu_s_mean": round(statistics.fmean(r.cpu_s for r in mine), 2),
            "wall_s_mean": round(statistics.fmean(r.seconds for r in mine), 2),
            "prompt_tokens": round(statistics.fmean(r.prompt_tokens for r in mine)),
            "cached_tokens": round(statistics.fmean(r.cached_tokens for r in mine)),
            "new_prompt_tokens": round(statistics.fmean(r.prompt_tokens - r.cached_tokens for r in mine)),
            "completion_tokens": round(statistics.fmean(r.completion_tokens for r in mine), 1),
        }
    return out


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], help="script folder (repeat; default holdout4, holdout3)")
    parser.add_argument("--short", type=int, default=4, help="calls under 90 s")
    parser.add_argument("--long", type=int, default=2, help="calls of 150 s or more")
    parser.add_argument("--only", default="", help="comma-separated call ids instead of --short/--long")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare", nargs="+", default=[], metavar="NAME=JSON",
                        help="variants run side by side (Settings overrides as JSON)")
    parser.add_argument("--json", default="", help="write rows and summaries here")
    parser.add_argument("--dump", default="", help="write every answer and its choice probabilities here")
    args = parser.parse_args(list(argv) if argv is not None else None)

    calls = pick_calls(args.set or DEFAULT_SETS, args.short, args.long)
    if args.only:
        wanted = args.only.split(",")
        every = pick_calls(args.set or DEFAULT_SETS, 999, 999)
        calls = [(c, k) for c, k in every if c.id in wanted]
    variants = [(v.split("=", 1)[0], json.loads(v.split("=", 1)[1] or "{}")) for v in args.compare] or [("default", {})]
    rows: dict[str, list[Row]] = {name: [] for name, _ in variants}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        built = {}
        for name, overrides in variants:
            analyser, backend, mib = build(name, overrides, Path(tmp), args.threads)
            built[name] = (analyser, backend)
            memory[name] = round(mib)
        started = time.perf_counter()
        for i, (call, kind) in enumerate(calls):
            # Alternate which variant goes first, so neither always runs right after the other's call.
            order = variants if i % 2 == 0 else variants[::-1]
            for name, _ in order:
                row = run_call(*built[name], call, kind)
                rows[name].append(row)
                print(f"{i + 1}/{len(calls)} {call.id} {kind} turns={row.turns} [{name}] {row.cpu_s:.1f} CPU s "
                      f"{row.seconds:.1f} wall s "
                      f"prompt={row.prompt_tokens} cached={row.cached_tokens} completion={row.completion_tokens}",
                      file=sys.stderr, flush=True)
        wall = time.perf_counter() - started
        for _, backend in built.values():
            backend.close()
    report = {"variants": dict(variants), "threads": args.threads, "wall_s": round(wall, 1),
              "model_rss_mib": memory, "peak_rss_mib": round(rss_mib("VmHWM")),
              "summary": {name: summary(r) for name, r in rows.items()},
              "rows": {name: [{k: v for k, v in r.__dict__.items() if k != "answers"} for r in rs]
                       for name, rs in rows.items()}}
    print(f"{'variant':<12} {'kind':<6} {'calls':>5} {'turns':>5} {'audio s':>7} {'CPU s med':>9} {'mean':>6} "
          f"{'wall':>6} {'prompt':>6} {'cached':>6} {'new':>5} {'compl':>5} {'model MiB':>9}")
    for name, by_kind in report["summary"].items():
        for kind, s in by_kind.items():
            print(f"{name:<12} {kind:<6} {s['calls']:>5} {s['turns']:>5} {s['audio_s']:>7} {s['cpu_s_median']:>9} "
                  f"{s['cpu_s_mean']:>6} {s['wall_s_mean']:>6} {s['prompt_tokens']:>6} {s['cached_tokens']:>6} "
                  f"{s['new_prompt_tokens']:>5} {s['completion_tokens']:>5} {memory[name]:>9}")
    print(f"peak RSS of the process: {report['peak_rss_mib']} MiB")
    if len(variants) > 1:
        first = variants[0][0]
        for name, _ in variants[1:]:
            same = sum(a.answers == b.answers for a, b in zip(rows[first], rows[name], strict=True))
            print(f"{name}: same answers and choice probabilities as {first} on {same}/{len(calls)} calls")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    if args.dump:
        Path(args.dump).parent.mkdir(parents=True, exist_ok=True)
        Path(args.dump).write_text(json.dumps({n: {r.call: r.answers for r in rs} for n, rs in rows.items()},
                                              indent=1, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
