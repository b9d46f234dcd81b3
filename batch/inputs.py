"""Turn job inputs (folders, globs, ZIPs, manifest CSVs, files) into a list of recordings.

Everything that cannot become a recording is kept with a reason, so the job document lists it.
"""

from __future__ import annotations

import glob
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.archive import ArchiveError, ZipLimits, inspect_zip, read_entries
from pipeline.formats import AUDIO_SUFFIXES
from pipeline.metadata import MetadataResolver, load_manifest
from pipeline.records import CallMetadata
from pipeline.settings import Settings

_GLOB_CHARS = set("*?[")


@dataclass
class InputFile:
    path: str  # where the bytes are (a local path now; object-store URIs later)
    name: str  # how people know it: the path given, or zip-name/entry
    metadata: CallMetadata | None = None
    audio_sha256: str | None = None


@dataclass
class InputPlan:
    files: list[InputFile] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plan_inputs(inputs: list[str], settings: Settings, work_dir: Path) -> InputPlan:
    plan = InputPlan()
    limits = ZipLimits.from_settings(settings)
    for item in inputs:
        if _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                plan.rejected[item] = "the pattern matched no files"
            for match in matches:
                _add_path(Path(match), plan, limits, work_dir, settings)
        else:
            path = Path(item)
            if not path.exists():
                plan.rejected[item] = "no such file or folder"
                continue
            _add_path(path, plan, limits, work_dir, settings)
    plan.files = _dedupe(plan.files)
    return plan


def _dedupe(files: list[InputFile]) -> list[InputFile]:
    """A file reached twice (a folder and its manifest) is processed once, keeping its metadata."""
    chosen: dict[str, InputFile] = {}
    for item in files:
        known = chosen.get(item.path)
        if known is None or (known.metadata is None and item.metadata is not None):
            chosen[item.path] = item
    return list(chosen.values())


def _add_path(path: Path, plan: InputPlan, limits: ZipLimits, work_dir: Path, settings: Settings) -> None:
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            suffix = child.suffix.lower()
            if suffix in AUDIO_SUFFIXES or suffix in {".zip", ".csv"}:
                _add_path(child, plan, limits, work_dir, settings)
        return
    suffix = path.suffix.lower()
    if suffix == ".zip":
        _add_zip(path, plan, limits, work_dir)
    elif suffix == ".csv":
        _add_manifest(path, plan, settings)
    else:
        plan.files.append(InputFile(path=str(path.resolve()), name=str(path)))


def _add_zip(path: Path, plan: InputPlan, limits: ZipLimits, work_dir: Path) -> None:
    try:
        report = inspect_zip(str(path), limits)
    except ArchiveError as err:
        plan.rejected[str(path)] = str(err)
        return
    target = work_dir / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    for name, data in read_entries(str(path), report, limits):
        # Entries are written under flat, generated names: the archive's own names never touch the disk.
        local = target / f"{len(plan.files):06d}{Path(name).suffix.lower()}"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        plan.files.append(InputFile(path=str(local), name=f"{path}/{name}"))
    for name, reason in report.rejected.items():
        plan.rejected[f"{path}/{name}"] = reason


def _add_manifest(path: Path, plan: InputPlan, settings: Settings) -> None:
    """A CSV naming recordings (relative to the CSV) with their call metadata."""
    try:
        manifest = load_manifest(path)
    except ValueError as err:
        plan.rejected[str(path)] = str(err)
        return
    plan.warnings.extend(manifest.warnings)
    resolver = MetadataResolver(settings, manifest)
    for row in manifest.rows:
        target = Path(row.key)
        if not target.is_file():
            plan.rejected[f"{path}:{row.line}"] = f"manifest row names {row.file!r}, which does not exist"
            continue
        plan.files.append(
            InputFile(path=str(target), name=str(path.parent / row.file), metadata=resolver.resolve(target))
        )


def hash_files(files: list[InputFile], threads: int) -> None:
    """Fill audio_sha256 (the skip key) reading files in parallel; unreadable files keep None."""

    def digest(item: InputFile) -> None:
        try:
            sha = hashlib.sha256()
            with open(item.path, "rb") as handle:
                while block := handle.read(1 << 20):
                    sha.update(block)
            item.audio_sha256 = sha.hexdigest()
        except OSError:
            item.audio_sha256 = None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(digest, files))
