"""Decode and split: recording bytes → per-channel float32 tracks at 16 kHz, plus a fresh record.

PyAV (bundled FFmpeg) decodes every format call recorders produce (wav incl. 8 kHz mu-law/A-law,
mp3, m4a/aac, ogg/opus/vorbis, flac) and keeps both channels. Stereo channels become tracks with
roles from ``settings.audio.channel_roles``; a "stereo" file whose channels are identical is really
mono and is treated as such.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline import PIPELINE_VERSION
from pipeline.records import AudioInfo, CallMetadata, CallRecord, Track, make_record_id
from pipeline.stage import CallState, Stage, StageError, batch_rows, rows_to_batch

# Formats we have seen containers for; anything else is "not audio" rather than "corrupt".
_MIN_DECODABLE_S = 0.05


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def new_record(source: str, data: bytes, metadata: CallMetadata | None = None) -> CallRecord:
    digest = sha256_bytes(data)
    return CallRecord(
        pipeline_version=PIPELINE_VERSION,
        record_id=make_record_id(digest, PIPELINE_VERSION),
        audio_sha256=digest,
        source=source,
        file_name=Path(source).name,
        audio=AudioInfo(size_bytes=len(data)),
        metadata=metadata or CallMetadata(),
    )


class Decoder(Stage):
    """bytes → CallState with tracks. Input rows: ``path`` and optionally ``bytes`` and ``metadata``."""

    name = "decode"
    needs_audio = False

    def model_name(self) -> str | None:
        return "pyav"

    def model_version(self) -> str | None:
        return str(av.__version__)

    def decode(
        self, source: str, data: bytes | None = None, metadata: CallMetadata | None = None, path: str | None = None
    ) -> CallState:
        """Decode one recording, never raising: failures become a failed record with a reason.

        ``source`` names the recording for people (a file path, or archive/entry); the bytes come
        from ``data``, else from ``path``, else from ``source`` as a path.
        """
        if data is None:
            try:
                data = Path(path or source).read_bytes()
            except OSError as err:
                data = b""
                state = CallState(record=new_record(source, data, metadata))
                state.record.status = "failed"
                state.record.add_error(self.name, "unreadable_file", f"cannot read {source}: {err.strerror}")
                return state
        state = CallState(record=new_record(source, data, metadata))
        state.scratch["data"] = data
        state = self.run(state)
        state.scratch.pop("data", None)
        return state

    def process(self, state: CallState) -> CallState:
        data: bytes = state.scratch.get("data", b"")
        settings = self.settings.audio
        record = state.record
        if not data:
            raise StageError("empty_file", "the file is empty (0 bytes)")
        if len(data) > settings.max_file_bytes:
            raise StageError(
                "file_too_large",
                f"the file is {len(data) / 1e6:.0f} MB, over the {settings.max_file_bytes / 1e6:.0f} MB limit",
            )
        tracks, info, warnings = decode_audio(data, settings.sample_rate, settings.max_duration_s)
        info.size_bytes = len(data)
        record.audio = info
        detail: dict[str, Any] = {"warnings": warnings} if warnings else {}

        if tracks.shape[0] >= 2 and _channels_identical(tracks[0], tracks[1]):
            tracks = tracks[:1]
            detail["note"] = "stereo file with identical channels: treated as mono"
        if tracks.shape[0] > len(settings.channel_roles) and tracks.shape[0] > 1:
            detail["dropped_channels"] = int(tracks.shape[0] - len(settings.channel_roles))
            tracks = tracks[: len(settings.channel_roles)]

        if tracks.shape[0] == 1:
            record.mode = "mono"
            record.tracks = [Track(index=0, role="mixed", channel=0)]
        else:
            record.mode = "stereo"
            record.diarization = "channels"
            record.tracks = [
                Track(index=i, role=settings.channel_roles.get(i, f"channel{i}"), channel=i)
                for i in range(tracks.shape[0])
            ]
        for track, samples in zip(record.tracks, tracks, strict=True):
            track.peak_dbfs = round(max(peak_dbfs(samples), -200.0), 2)
            track.silent = track.peak_dbfs < settings.silence_floor_dbfs
        if all(t.silent for t in record.tracks):
            record.status = "empty"
            detail["note"] = "every channel is silent"
        state.tracks = tracks
        state.scratch[f"{self.name}_detail"] = detail
        return state

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        rows = []
        for row in batch_rows(batch):
            metadata = row.get("metadata")
            meta = CallMetadata.model_validate_json(metadata) if metadata else None
            data = row.get("bytes")
            path = str(row["path"])
            source = str(row.get("name") or path)
            state = self.decode(source, bytes(data) if data is not None else None, meta, path=path)
            rows.append(state.to_row())
        return rows_to_batch(rows)


def _channels_identical(a: np.ndarray, b: np.ndarray) -> bool:
    if a.size == 0:
        return True
    return bool(np.max(np.abs(a - b)) < 1e-3)


def decode_audio(data: bytes, sample_rate: int, max_duration_s: float) -> tuple[np.ndarray, AudioInfo, list[str]]:
    """Decode bytes to (channels, samples) float32 at sample_rate; raise StageError with a reason."""
    warnings: list[str] = []
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError as err:
        raise StageError("not_audio", "the file is not a recording in any audio format we can read") from err
    except av.error.FFmpegError as err:
        raise StageError("corrupt_audio", f"the file could not be opened as audio ({_ffmpeg_reason(err)})") from err

    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise StageError("no_audio_stream", "the file has no audio stream")
        stream = streams[0]
        codec_ctx: Any = stream.codec_context
        info = AudioInfo(
            container=container.format.name if container.format else None,
            codec=codec_ctx.name if codec_ctx else None,
            sample_rate=codec_ctx.sample_rate if codec_ctx else None,
            channels=codec_ctx.channels if codec_ctx else None,
        )
        declared = _declared_duration(container, stream)
        if declared is not None and declared > max_duration_s:
            raise StageError(
                "too_long",
                f"the recording lasts {declared / 60:.1f} min, over the {max_duration_s / 60:.1f} min limit",
            )
        n_channels = max(1, info.channels or 1)
        layout = "stereo" if n_channels == 2 else ("mono" if n_channels == 1 else None)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        limit = int(max_duration_s * sample_rate)
        try:
            for frame in container.decode(stream):
                assert isinstance(frame, av.AudioFrame)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    total += chunks[-1].shape[1]
                if total > limit:
                    # Duration headers can lie or be absent: enforce the limit while decoding.
                    raise StageError(
                        "too_long", f"the recording is longer than the {max_duration_s / 60:.1f} min limit"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as err:
            decoded_s = total / sample_rate
            if decoded_s < _MIN_DECODABLE_S:
                raise StageError(
                    "corrupt_audio",
                    f"the audio data is damaged and could not be decoded ({_ffmpeg_reason(err)})",
                ) from err
            warnings.append(f"decoding stopped at {decoded_s:.1f} s: the file is truncated or damaged")
        except ValueError as err:  # PyAV raises ValueError for unsupported sample formats/layouts
            raise StageError("unsupported_codec", f"the audio codec is not supported ({err})") from err

    if not chunks:
        raise StageError("corrupt_audio", "the file holds no decodable audio")
    audio = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if audio.shape[0] != n_channels and layout is None:
        audio = audio[:n_channels]
    info.duration_s = round(audio.shape[1] / sample_rate, 3)
    if info.duration_s < _MIN_DECODABLE_S:
        raise StageError("corrupt_audio", "the file holds no decodable audio")
    return np.ascontiguousarray(audio), info, warnings


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return None


def _ffmpeg_reason(err: Exception) -> str:
    # FFmpeg messages name internal paths sometimes; keep only the human part.
    text = getattr(err, "strerror", None) or str(err)
    return str(text).split(":")[0].strip() or type(err).__name__
