"""Turns and metrics on a constructed call whose overlaps and silences are known exactly."""

from __future__ import annotations

import itertools

import pytest

from pipeline.conversation import build_turns, intersect, measure, union
from pipeline.records import AudioInfo, CallRecord, Segment, SpeechRegion, Track, Word
from pipeline.settings import ConversationSettings


def _track(index: int, role: str, spans: list[tuple[float, float, str]]) -> Track:
    segments = []
    for start, end, text in spans:
        words = text.split()
        step = (end - start) / len(words)
        segments.append(
            Segment(
                start=start,
                end=end,
                text=text,
                words=[
                    Word(start=start + i * step, end=start + (i + 1) * step, text=w, probability=0.9)
                    for i, w in enumerate(words)
                ],
            )
        )
    return Track(
        index=index,
        role=role,
        channel=index,
        speech_regions=[SpeechRegion(start=a, end=b) for a, b, _ in spans],
        speech_seconds=sum(b - a for a, b, _ in spans),
        segments=segments,
    )


@pytest.fixture
def call() -> CallRecord:
    # 60 s call. Agent: 1-6, 8-14 (customer cuts in at 13), 25-30, 52-58.
    # Customer: 6.5-8 , 13-20, 31-40 (agent talks over at 38: 37.5-39), 41-45.
    # Silences between everyone: 20-25 (5 s dead air), 45-52 (7 s hold), and short gaps.
    agent = _track(
        0,
        "agent",
        [
            (1.0, 6.0, "thank you for calling how can I help"),
            (8.0, 14.0, "let me check that for you one moment"),
            (25.0, 30.0, "I found your booking for Tuesday"),
            (37.5, 39.0, "sorry to interrupt"),
            (52.0, 58.0, "thanks for holding it is sorted goodbye"),
        ],
    )
    customer = _track(
        1,
        "customer",
        [
            (6.5, 8.0, "my boiler broke"),
            (13.0, 20.0, "it has been three days already and nobody came"),
            (31.0, 40.0, "that is wrong it was Monday not Tuesday please fix it"),
            (41.0, 45.0, "okay I will hold"),
        ],
    )
    return CallRecord(
        pipeline_version="t",
        record_id="x-t",
        audio_sha256="x",
        source="constructed",
        file_name="constructed.wav",
        audio=AudioInfo(duration_s=60.0),
        tracks=[agent, customer],
    )


def test_turns_alternate_in_time_order_with_roles(call: CallRecord) -> None:
    turns = build_turns(call, merge_gap_s=1.0)
    assert [t.role for t in turns] == ["agent", "customer", "agent", "customer", "agent", "customer", "agent",
                                       "customer", "agent"]  # fmt: skip
    assert turns[0].text.startswith("thank you") and turns[0].start == 1.0
    assert all(a.start <= b.start for a, b in itertools.pairwise(turns))
    assert turns[0].confidence == pytest.approx(0.9)


def test_same_role_segments_close_together_merge_into_one_turn(call: CallRecord) -> None:
    call.tracks[0].segments.insert(1, Segment(start=6.2, end=6.4, text="right", words=[]))
    turns = build_turns(call, merge_gap_s=1.0)
    assert turns[0].text.endswith("right") and turns[0].end == 6.4


def test_metrics_match_the_constructed_timeline(call: CallRecord) -> None:
    opts = ConversationSettings(dead_air_min_s=4.0, min_overlap_s=0.3)
    metrics = measure(call, build_turns(call, 1.0), opts)
    agent_talk = 5 + 6 + 5 + 1.5 + 6
    customer_talk = 1.5 + 7 + 9 + 4
    overlap = 1.0 + 1.5  # 13-14 and 37.5-39
    assert metrics.duration_s == 60.0
    assert metrics.talk_seconds == pytest.approx(agent_talk + customer_talk - overlap)
    assert metrics.non_talk_seconds == pytest.approx(60.0 - metrics.talk_seconds)
    assert metrics.overtalk_seconds == pytest.approx(overlap)
    assert metrics.overtalk_count == 2
    assert metrics.interruptions == 2
    assert metrics.per_role["customer"].interruptions == 1  # cut in at 13
    assert metrics.per_role["agent"].interruptions == 1  # talked over at 37.5
    assert metrics.longest_silence_s == pytest.approx(7.0)
    assert [(d.start, d.end) for d in metrics.dead_air] == [(20.0, 25.0), (45.0, 52.0)]
    assert metrics.per_role["agent"].talk_seconds == pytest.approx(agent_talk)
    assert metrics.per_role["customer"].talk_ratio == pytest.approx(customer_talk / metrics.talk_seconds, abs=1e-3)
    assert metrics.per_role["agent"].words == 8 + 8 + 6 + 3 + 7
    assert metrics.per_role["agent"].words_per_minute == pytest.approx(32 / (agent_talk / 60), abs=0.1)
    assert metrics.per_role["customer"].longest_monologue_s == pytest.approx(9.0)


def test_short_overlaps_below_threshold_are_not_overtalk(call: CallRecord) -> None:
    metrics = measure(call, build_turns(call, 1.0), ConversationSettings(min_overlap_s=1.2))
    assert metrics.overtalk_count == 1 and metrics.overtalk_seconds == pytest.approx(1.5)


def test_call_without_speech_has_zero_metrics(call: CallRecord) -> None:
    for track in call.tracks:
        track.speech_regions, track.segments = [], []
    metrics = measure(call, [], ConversationSettings())
    assert metrics.talk_seconds == 0 and metrics.non_talk_seconds == 60.0 and metrics.overtalk_count == 0


def test_interval_helpers() -> None:
    assert union([(3, 4), (1, 2), (1.5, 2.5)]) == [(1, 2.5), (3, 4)]
    assert intersect([(0, 5), (6, 8)], [(4, 7)]) == [(4, 5), (6, 7)]
