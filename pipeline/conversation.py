"""Merge tracks into ordered turns and measure the conversation.

Timing metrics come from the VAD speech regions of each track (exact per party on dual-channel
calls), word counts from the transcript.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from pipeline.records import CallMetrics, CallRecord, RoleMetrics, Span, SpeechRegion, Turn, Word
from pipeline.settings import ConversationSettings
from pipeline.stage import CallState, Stage

Interval = tuple[float, float]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Overlaps of two sorted, disjoint interval lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def total(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def build_turns(record: CallRecord, merge_gap_s: float) -> list[Turn]:
    pieces = sorted(
        (
            (seg.start, seg.end, track.role, track.index, seg.text, seg.words)
            for track in record.tracks
            for seg in track.segments
        ),
        key=lambda p: (p[0], p[1]),
    )
    turns: list[Turn] = []
    for start, end, role, track_index, text, words in pieces:
        last = turns[-1] if turns else None
        if last is not None and last.role == role and start - last.end <= merge_gap_s:
            last.end = max(last.end, end)
            last.text = f"{last.text} {text}".strip()
            last.words.extend(words)
            continue
        turns.append(
            Turn(
                index=len(turns),
                role=role,
                track=track_index,
                start=start,
                end=end,
                text=text,
                words=list(words),
            )
        )
    for turn in turns:
        turn.confidence = round(_mean_probability(turn.words), 4)
    return turns


def _mean_probability(words: Sequence[Word]) -> float:
    return sum(w.probability for w in words) / len(words) if words else 0.0


def measure(record: CallRecord, turns: Sequence[Turn], opts: ConversationSettings) -> CallMetrics:
    duration = record.audio.duration_s
    by_role: dict[str, list[Interval]] = {}
    for track in record.tracks:
        by_role.setdefault(track.role, []).extend(_spans(track.speech_regions))
    by_role = {role: union(spans) for role, spans in by_role.items()}
    everyone = union(span for spans in by_role.values() for span in spans)
    talk = total(everyone)

    gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in itertools.pairwise(everyone)]
    dead_air = [Span(start=round(a, 3), end=round(b, 3)) for a, b in gaps if b - a >= opts.dead_air_min_s]

    roles = list(by_role)
    overtalk: list[Interval] = []
    interruptions = dict.fromkeys(roles, 0)
    for i, first in enumerate(roles):
        for second in roles[i + 1 :]:
            for start, end in intersect(by_role[first], by_role[second]):
                if end - start < opts.min_overlap_s:
                    continue
                overtalk.append((start, end))
                # Whoever started the overlapping stretch later cut in on the other.
                started_first = _region_start(by_role[first], start)
                started_second = _region_start(by_role[second], start)
                interrupter = second if started_second >= started_first else first
                interruptions[interrupter] += 1

    per_role: dict[str, RoleMetrics] = {}
    for role, spans in by_role.items():
        role_talk = total(spans)
        role_turns = [t for t in turns if t.role == role]
        words = sum(len(t.words) if t.words else len(t.text.split()) for t in role_turns)
        per_role[role] = RoleMetrics(
            talk_seconds=round(role_talk, 3),
            talk_ratio=round(role_talk / talk, 4) if talk else 0.0,
            turns=len(role_turns),
            words=words,
            words_per_minute=round(words / (role_talk / 60.0), 1) if role_talk > 0 else 0.0,
            interruptions=interruptions.get(role, 0),
            longest_monologue_s=round(max((t.end - t.start for t in role_turns), default=0.0), 3),
        )
    non_talk = max(0.0, duration - talk)
    return CallMetrics(
        duration_s=round(duration, 3),
        talk_seconds=round(talk, 3),
        non_talk_seconds=round(non_talk, 3),
        non_talk_ratio=round(non_talk / duration, 4) if duration else 0.0,
        longest_silence_s=round(max((b - a for a, b in gaps), default=0.0), 3),
        overtalk_seconds=round(total(union(overtalk)), 3),
        overtalk_count=len(overtalk),
        interruptions=sum(interruptions.values()),
        dead_air=dead_air,
        per_role=per_role,
    )


def _spans(regions: Iterable[SpeechRegion]) -> list[Interval]:
    return [(r.start, r.end) for r in regions]


def _region_start(spans: Sequence[Interval], t: float) -> float:
    return next((a for a, b in spans if a <= t < b), t)


class ConversationBuilder(Stage):
    """Turns and metrics from transcribed tracks; needs no audio, so it can re-run on stored records."""

    name = "conversation"
    needs_audio = False

    def process(self, state: CallState) -> CallState:
        record = state.record
        opts = self.settings.conversation
        record.turns = build_turns(record, opts.turn_merge_gap_s)
        record.metrics = measure(record, record.turns, opts)
        if record.status == "ok" and not record.turns:
            record.status = "empty"
        return state
