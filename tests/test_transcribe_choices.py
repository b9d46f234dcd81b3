"""Transcription choices on real audio: the call center's languages, names from the call's metadata
as hints, per-channel language with a fallback for short channels, and the guard against text made up
on hold music (Whisper base and tiny.en from the packaged models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.records import CallMetadata, Segment, SpeechRegion, Word
from pipeline.runner import CallPipeline
from pipeline.settings import Settings
from pipeline.transcribe import (
    Transcriber,
    is_hallucination,
    opening_regions,
    segments_from,
    to_segments,
    track_workers,
    uncovered_s,
    whisper_language,
)
from tests.audio_helpers import encode, load_sample, sample_reference
from tests.conftest import SAMPLES, make_settings

HOLD_MUSIC = Path("/usr/share/asterisk/moh/macroform-cold_day.wav")  # Debian asterisk-moh-opsound-wav


def _agent_opening(seconds: float = 12.0) -> tuple[np.ndarray, list[SpeechRegion]]:
    """The agent channel of a real sample call: speech regions taken from its reference timings."""
    audio = load_sample("callback_promise.ogg")[0]
    turns = [t for t in sample_reference("callback_promise.ogg")["turns"] if t["role"] == "agent"]
    regions = [SpeechRegion(start=t["start"], end=t["end"]) for t in turns if t["end"] <= seconds]
    return audio[: int(seconds * 16000)], regions


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def base_transcriber(home: Path, languages: list[str]) -> Transcriber:
    return Transcriber(make_settings(home, transcribe={"model": "base", "cpu_threads": 1, "languages": languages}))


def test_language_detection_chooses_only_among_the_call_centers_languages(home: Path) -> None:
    audio, regions = _agent_opening()
    assert base_transcriber(home, []).detect_language(audio, regions)[0] == "en"
    language, probability = base_transcriber(home, ["tr", "de"]).detect_language(audio, regions)
    assert language in ("tr", "de")  # English speech, but this center only takes Turkish and German
    assert 0.0 < probability <= 1.0  # renormalised over the allowed languages, kept for the record


def test_unknown_language_code_is_refused_when_the_stage_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="klingon"):
        Transcriber(make_settings(tmp_path, transcribe={"model": "tiny.en", "languages": ["en", "klingon"]}))


def test_each_channel_gets_its_language_and_a_short_channel_borrows_the_other(home: Path) -> None:
    from pipeline.runner import CallPipeline

    settings = make_settings(home, transcribe={"model": "base", "cpu_threads": 1, "languages": ["en", "tr"]})
    pipe = CallPipeline(settings, analyse=False)
    state = pipe.decoder.decode(str(SAMPLES / "callback_promise.ogg"))
    state = pipe.chains[0].run(state)  # the audio group: diarize (mono only), VAD, enhance
    customer = state.record.tracks[1]
    # Keep one second of the customer channel: too little speech to tell a language from.
    first = customer.speech_regions[0]
    customer.speech_regions = [SpeechRegion(start=first.start, end=first.start + 1.0)]
    customer.speech_seconds = 1.0
    transcriber = pipe.stage("transcribe")
    assert isinstance(transcriber, Transcriber)
    languages = transcriber.track_languages(state)
    assert languages[0][0] == "en" and languages[0][1] > 0.5
    assert languages[1] == languages[0]  # borrowed from the agent, who said enough


def test_hints_come_from_settings_and_the_calls_metadata(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, transcribe={"model": "tiny.en", "vocabulary": ["Brightline Home Services"]})
    transcriber = Transcriber(settings)
    metadata = CallMetadata(
        agent_id="AG017", extra={"company": "Brightline Home Services", "agent_name": "Nadia", "queue_note": "x"}
    )
    assert transcriber.hints(metadata) == ["Brightline Home Services", "Nadia"]  # no duplicate, no other fields
    assert transcriber.hints(CallMetadata()) == ["Brightline Home Services"]


def test_names_in_the_calls_metadata_reach_whisper_and_the_greeting_survives(
    transcript_pipeline: CallPipeline,
) -> None:
    """Real speech that opens with the names themselves: given as hints they must not be skipped
    (a bare-name prompt made Whisper drop "Brightline Home Services" from the greeting)."""
    metadata = CallMetadata(extra={"company": "Brightline Home Services", "agent_name": "Sarah"})
    record = transcript_pipeline.process_file(SAMPLES / "callback_promise.ogg", metadata=metadata)
    stage = next(s for s in record.stages if s.stage == "transcribe")
    assert stage.detail["hints"] == 2
    opening = record.turns[0].text
    assert "Brightline Home Services" in opening and "Sarah" in opening


@pytest.mark.skipif(not HOLD_MUSIC.exists(), reason="apt-get install asterisk-moh-opsound-wav")
def test_hold_music_gives_no_text(tmp_path: Path) -> None:
    """Real hold music: VAD finds no speech in it, and forced through Whisper anyway (as music with a
    voice over it would be), the guard drops what tiny.en makes up ("Thank you very much.")."""
    from faster_whisper import decode_audio

    from pipeline.vad import VoiceActivityDetector

    music = decode_audio(str(HOLD_MUSIC), sampling_rate=16000)[: 12 * 16000]
    settings = make_settings(tmp_path, transcribe={"model": "tiny.en", "cpu_threads": 1})
    assert VoiceActivityDetector(settings).regions(music) == []
    everything = [SpeechRegion(start=0.0, end=12.0)]
    unguarded = Transcriber(make_settings(tmp_path, transcribe={"model": "tiny.en", "cpu_threads": 1, "guard": False}))
    made_up = unguarded.transcribe_track(music, everything, "en")
    assert made_up, "tiny.en no longer hallucinates on this music: the guard test needs new audio"
    assert all(is_hallucination(s) for s in made_up)
    guarded = Transcriber(settings)
    assert guarded.transcribe_track(music, everything, "en") == []
    # ...while real speech keeps its words.
    audio, regions = _agent_opening(seconds=4.5)
    assert "speaking" in " ".join(s.text for s in guarded.transcribe_track(audio, regions, "en")).lower()


def test_guard_keeps_a_confident_thank_you_and_drops_doubtful_or_wordless_ones() -> None:
    def seg(text: str, no_speech: float, logprob: float) -> Segment:
        return Segment(start=0, end=1, text=text, avg_logprob=logprob, no_speech_prob=no_speech,
                       words=[Word(start=0, end=1, text=text, probability=0.9)])  # fmt: skip

    assert not is_hallucination(seg("Thank you.", 0.05, -0.2))
    assert is_hallucination(seg("Thank you.", 0.4, -1.3))
    assert is_hallucination(seg("♪ ♪", 0.1, -0.5))
    assert is_hallucination(seg("Thanks for watching!", 0.25, -0.4))
    # A lone web address: tiny.en's sampled output on the hold music; a confident one is kept.
    assert is_hallucination(seg("www .beadaholique .com", 0.37, -1.25))
    assert not is_hallucination(seg("www.northfield.co.uk", 0.05, -0.2))
    assert not is_hallucination(seg("It's on www .northfield .co .uk, the support page.", 0.37, -1.25))
    assert is_hallucination(seg("I'm sorry. " * 12, 0.1, -0.3))


def test_guard_drops_doubted_text_with_more_words_than_its_time_allows() -> None:
    """What base wrote after the last greeting of a call: 20 words squeezed into 0.64 s, doubted."""

    def seg(text: str, end: float, no_speech: float, logprob: float) -> Segment:
        words = text.split()
        step = end / len(words)
        return Segment(start=0, end=end, text=text, avg_logprob=logprob, no_speech_prob=no_speech,
                       words=[Word(start=i * step, end=(i + 1) * step, text=w, probability=0.7)
                              for i, w in enumerate(words)])  # fmt: skip

    made_up = "We're going to have to go to the next floor, and we're going to have to go to the next floor."
    assert is_hallucination(seg(made_up, 0.64, 0.52, -1.43))
    assert not is_hallucination(seg(made_up, 0.64, 0.05, -0.3))  # fast but confident: kept
    assert not is_hallucination(seg(made_up, 5.0, 0.52, -1.43))  # doubted at a speaking pace: kept


def test_threads_are_shared_among_the_tracks_decoded_at_once() -> None:
    assert track_workers("cpu", 2, "auto") == (2, 1)
    assert track_workers("cpu", 4, "auto") == (2, 2)
    assert track_workers("cpu", 1, "auto") == (1, 1)  # one thread (a batch actor): one track at a time
    assert track_workers("cpu", 0, 1) == (1, 0)  # one at a time keeps CTranslate2's own choice
    assert track_workers("cuda", 0, "auto") == (1, 0)  # GPU: the batched pipeline, one worker


def test_tracks_decoded_at_once_give_the_same_segments_as_one_after_another(tmp_path: Path) -> None:
    """A short real stereo call through the whole pipeline, base model: 2 workers of 1 thread each
    against 1 worker of 1 thread (same arithmetic per track, so the same text and times)."""
    call = tmp_path / "short_call.wav"
    call.write_bytes(encode(load_sample("callback_promise.ogg")[:, : 20 * 16000], 16000, "wav_pcm16"))
    records = []
    for parallel, threads in ((1, 1), (2, 2)):
        settings = make_settings(
            tmp_path / f"home{parallel}",
            transcribe={"model": "base", "cpu_threads": threads, "parallel_tracks": parallel},
        )
        pipe = CallPipeline(settings, analyse=False)
        assert pipe.stage("transcribe").workers == parallel  # type: ignore[attr-defined]
        records.append(pipe.process_file(call))
    one_by_one, at_once = ([[(s.text, s.start, s.end) for s in t.segments] for t in r.tracks] for r in records)
    assert all(one_by_one) and at_once == one_by_one
    assert records[1].language == records[0].language == "en"


def test_the_calls_metadata_language_is_used_instead_of_detection(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(home, transcribe={"model": "base", "cpu_threads": 1, "languages": ["en", "tr"]})
    pipe = CallPipeline(settings, analyse=False)
    state = pipe.chains[0].run(pipe.decoder.decode(str(SAMPLES / "callback_promise.ogg")))
    transcriber = pipe.stage("transcribe")
    assert isinstance(transcriber, Transcriber)

    def no_detection(*args: object) -> tuple[str, float]:
        raise AssertionError("detected although the metadata named the language")

    # The telephony export says Turkish (a manifest column or an upload field named "language").
    state.record.metadata = CallMetadata(extra={"language": "tr-TR"})
    with monkeypatch.context() as patched:
        patched.setattr(transcriber, "detect_language", no_detection)
        assert set(transcriber.track_languages(state).values()) == {("tr", 1.0)}
        assert transcriber.language_source(state.record.metadata) == "metadata"
    # A language this center does not take (or no language at all) is detected as before: English.
    state.record.metadata = CallMetadata(extra={"language": "de"})
    assert {code for code, _ in transcriber.track_languages(state).values()} == {"en"}
    assert transcriber.language_source(state.record.metadata) == "detected"
    assert whisper_language("EN") == "en" and whisper_language("klingon") is None


def test_a_center_with_one_language_detects_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(home, transcribe={"model": "base", "cpu_threads": 1, "languages": ["tr"]})
    pipe = CallPipeline(settings, analyse=False)
    state = pipe.chains[0].run(pipe.decoder.decode(str(SAMPLES / "callback_promise.ogg")))
    transcriber = pipe.stage("transcribe")
    assert isinstance(transcriber, Transcriber)
    monkeypatch.setattr(transcriber, "detect_language", lambda *a: (_ for _ in ()).throw(AssertionError("detected")))
    assert set(transcriber.track_languages(state).values()) == {("tr", 1.0)}  # what detection would have said


def test_settings_default_to_the_rubrics_languages_and_hotwords() -> None:
    opts = Settings().transcribe
    assert opts.languages == ["en", "tr"] and opts.hint_mode == "hotwords" and opts.guard


def test_speech_left_without_words_is_measured_so_a_hint_that_swallowed_it_is_undone() -> None:
    def words(*spans: tuple[float, float]) -> list[Segment]:
        return [Segment(start=a, end=b, text="w", words=[Word(start=a, end=b, text="w", probability=0.9)])
                for a, b in spans]  # fmt: skip

    regions = [SpeechRegion(start=0.0, end=6.0), SpeechRegion(start=10.0, end=12.0)]
    assert uncovered_s(regions, words((0.2, 3.0), (3.2, 5.8), (10.1, 11.9))) == 0.0
    # The greeting (0-3.5 s) skipped, as a prompt holding its names made Whisper do.
    assert uncovered_s(regions, words((3.5, 5.8), (10.1, 11.9))) == pytest.approx(3.5)
    # The last sentence never decoded.
    assert uncovered_s(regions, words((0.2, 3.0), (3.2, 5.8))) == pytest.approx(2.0)


def test_the_opening_is_the_regions_whispers_first_window_reaches() -> None:
    regions = [SpeechRegion(start=s, end=s + 12.0) for s in (0.0, 20.0, 40.0, 60.0)]
    # 12 + 12 = 24 s of speech before the third region starts: it starts inside the first 30 s window.
    assert opening_regions(regions, 30.0) == regions[:3]
    assert opening_regions(regions[:2], 30.0) == regions[:2]
    long_first = [SpeechRegion(start=0.0, end=50.0), *regions[3:]]
    assert opening_regions(long_first, 30.0) == long_first[:1]


def test_segments_from_a_time_keep_the_later_words_of_a_straddling_segment() -> None:
    def seg(*spans: tuple[float, float]) -> Segment:
        words = [Word(start=a, end=b, text=f"w{a:g}", probability=0.9) for a, b in spans]
        return Segment(start=spans[0][0], end=spans[-1][1], text=" ".join(w.text for w in words), words=words)

    kept = segments_from([seg((1, 2)), seg((9, 10), (11, 12)), seg((13, 14))], 10.5)
    assert [s.text for s in kept] == ["w11", "w13"]
    assert kept[0].start == 11 and kept[0].end == 12


def test_word_parts_whisper_wrote_without_a_space_stay_attached_in_the_text() -> None:
    """faster-whisper's word list splits "forty-nine", "o'clock" and "yahoo.com" into parts with no leading
    space; the segment text keeps them attached (as Whisper's own text does), also across a split."""
    from faster_whisper.transcribe import Segment as WhisperSegment
    from faster_whisper.transcribe import Word as WhisperWord

    parts = [(" It's", 0.0), (" forty", 0.3), ("-nine", 0.6), (" at", 0.9), (" ten", 1.1), (" o", 1.3),
             ("'clock.", 1.5), (" Mail", 4.0), (" ann", 4.3), ("@yahoo", 4.6), (".com", 4.9)]  # fmt: skip
    words = [WhisperWord(start=t, end=t + 0.25, word=w, probability=0.9) for w, t in parts]
    raw = WhisperSegment(
        id=0,
        seek=0,
        start=0.0,
        end=5.2,
        text="".join(w for w, _ in parts),
        tokens=[],
        avg_logprob=-0.2,
        compression_ratio=1.2,
        no_speech_prob=0.01,
        words=words,
        temperature=0.0,
    )
    segments = to_segments([raw], split_gap_s=1.5)
    assert [s.text for s in segments] == ["It's forty-nine at ten o'clock.", "Mail ann@yahoo.com"]
    assert [w.text for w in segments[0].words][:3] == ["It's", "forty", "-nine"]  # words keep their own times
    later = segments_from(segments, 0.5)
    assert later[0].text == "-nine at ten o'clock." and later[1].text == "Mail ann@yahoo.com"


def test_hotwords_reach_only_the_first_window_of_a_track(tmp_path: Path) -> None:
    """`hint_scope: opening`: faster-whisper asks for a prompt once per window; past the first window of
    a hinted decoding it gets none of the hotwords (the rest is decoded as a track without hints)."""
    transcriber = Transcriber(make_settings(tmp_path))
    seen: list[str | None] = []
    real = transcriber._get_prompt_inner

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("hotwords"))  # type: ignore[arg-type]
        return real(*args, **kwargs)

    transcriber._get_prompt_inner = recording
    audio = load_sample("callback_promise.ogg")[0]
    regions = [SpeechRegion(start=t["start"], end=t["end"]) for t in sample_reference("callback_promise.ogg")["turns"]
               if t["role"] == "agent"]  # fmt: skip
    segments = transcriber.transcribe_hinted(audio, regions, "en", ["Brightline Home Services", "Sarah"])
    assert len(seen) >= 2 and seen[0] == "Glossary: Brightline Home Services, Sarah." and set(seen[1:]) == {None}
    assert "Brightline Home Services" in " ".join(s.text for s in segments)
    # With `hint_scope: track` every window gets them.
    everywhere = Transcriber(make_settings(tmp_path, transcribe={"model": "tiny.en", "cpu_threads": 1,
                                                                  "hint_scope": "track"}))  # fmt: skip
    seen.clear()
    real = everywhere._get_prompt_inner
    everywhere._get_prompt_inner = recording
    everywhere.transcribe_hinted(audio, regions, "en", ["Brightline Home Services", "Sarah"])
    assert len(seen) >= 2 and set(seen) == {"Glossary: Brightline Home Services, Sarah."}


def test_seek_windows_encodes_each_window_once_and_times_words_in_track_time(tmp_path: Path) -> None:
    """`seek: windows`: the glued speech is cut at region boundaries into windows of up to 30 s, each
    decoded once (one encoder pass per window, none for a window's trailing silence), and the words keep
    their times in the track (from the word alignment)."""
    settings = make_settings(tmp_path, transcribe={"model": "tiny.en", "cpu_threads": 1, "seek": "windows"})
    transcriber = Transcriber(settings)
    audio = load_sample("callback_promise.ogg")[0]
    regions = [SpeechRegion(start=t["start"], end=t["end"]) for t in sample_reference("callback_promise.ogg")["turns"]
               if t["role"] == "agent"]  # fmt: skip
    chunks, _ = transcriber.fed_speech(audio, regions)
    windows = transcriber.seek_windows(chunks)
    assert len(windows) >= 2 and all(w["end"] - w["start"] <= 30.0 for w in windows)
    encoded: list[tuple[int, ...]] = []
    real = transcriber._encode

    def counting(features: np.ndarray) -> object:
        encoded.append(features.shape)
        return real(features)

    transcriber._encode = counting
    segments = transcriber.transcribe_track(audio, regions, "en")
    assert len(encoded) == len(windows)
    fed = transcriber.fed_regions(audio, regions)
    words = [w for s in segments for w in s.words]
    assert len(words) > 20
    assert all(any(r.start - 0.1 <= w.start and w.end <= r.end + 0.1 for r in fed) for w in words)
    assert uncovered_s(fed, segments) < 3.0
