"""Offline model resolution: assembly of split weights, verification, re-use, clear errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pipeline.models import (
    PACKAGED_MODELS,
    ModelIntegrityError,
    ModelMissingError,
    PackagedModel,
    Part,
    assemble_parts,
    resolve_gguf,
    resolve_packaged,
    resolve_whisper,
)
from tests.conftest import REPO

CACHE = REPO / ".cache" / "callaudit" / "models"


def _parts(tmp_path: Path) -> tuple[list[Path], str]:
    parts = []
    for i, chunk in enumerate([b"a" * 1000, b"b" * 2000, b"c" * 10]):
        path = tmp_path / f"p{i}"
        path.write_bytes(chunk)
        parts.append(path)
    return parts, hashlib.sha256(b"a" * 1000 + b"b" * 2000 + b"c" * 10).hexdigest()


def test_split_parts_are_assembled_once_and_reused(tmp_path: Path) -> None:
    parts, digest = _parts(tmp_path)
    target = tmp_path / "out" / "model.bin"
    assert assemble_parts(parts, target, digest, 3010) == target
    assert target.read_bytes()[:3] == b"aaa" and target.stat().st_size == 3010
    first_mtime = target.stat().st_mtime_ns
    os.utime(parts[0], None)
    assemble_parts(parts, target, digest, 3010)
    assert target.stat().st_mtime_ns == first_mtime  # verified marker: no rewrite, no re-hash


def test_wrong_hash_is_refused_and_leaves_no_partial_file(tmp_path: Path) -> None:
    parts, _ = _parts(tmp_path)
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(ModelIntegrityError, match="reinstall"):
        assemble_parts(parts, target, "0" * 64)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_damaged_target_is_rebuilt(tmp_path: Path) -> None:
    parts, digest = _parts(tmp_path)
    target = tmp_path / "model.bin"
    assemble_parts(parts, target, digest, 3010)
    target.write_bytes(b"truncated")
    assemble_parts(parts, target, digest, 3010)
    assert target.stat().st_size == 3010


def test_missing_package_names_what_to_install(tmp_path: Path) -> None:
    ghost = PackagedModel(name="ghost", kind="gguf", parts=(Part("no_such_pkg_xyz", "m.gguf", "no-such-pkg-xyz==1.0"),))
    PACKAGED_MODELS["ghost"] = ghost
    try:
        with pytest.raises(ModelMissingError, match=r"pip install no-such-pkg-xyz==1\.0"):
            resolve_packaged("ghost", tmp_path)
    finally:
        del PACKAGED_MODELS["ghost"]


def test_packaged_whisper_base_is_assembled_and_verified() -> None:
    folder = Path(resolve_whisper("base", CACHE))
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert (folder / "model.bin.sha256").read_text().strip() == PACKAGED_MODELS["base"].sha256


def test_packaged_tiny_en_is_a_ready_folder() -> None:
    assert (Path(resolve_whisper("tiny.en", CACHE)) / "model.bin").exists()


def test_local_folder_and_hub_names_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    assert resolve_whisper(str(tmp_path), CACHE) == str(tmp_path)
    assert resolve_whisper("large-v3", CACHE) == "large-v3"
    assert resolve_whisper("Systran/faster-whisper-small", CACHE) == "Systran/faster-whisper-small"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissingError, match=r"no model\.bin"):
        resolve_whisper(str(tmp_path / "empty"), CACHE)
    with pytest.raises(ModelMissingError, match="unknown Whisper model"):
        resolve_whisper("whisper-enormous", CACHE)


def test_gguf_models_resolve_to_verified_files() -> None:
    qwen = resolve_gguf("qwen2.5-coder-1.5b", CACHE)
    assert qwen.stat().st_size > 1_000_000_000
    smol = resolve_gguf("smollm2-135m", CACHE)
    assert smol.suffix == ".gguf"
    with pytest.raises(ModelMissingError, match="GGUF"):
        resolve_gguf("gpt-17", CACHE)
