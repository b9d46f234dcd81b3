"""Turn job inputs into a plan of recordings by listing them: no audio is read here.

An input is a local path or an object URI (``s3://``, ``gs://``, ``abfs://``; see batch/storage.py):
a folder or prefix (searched recursively for audio, ZIPs and manifest CSVs), a glob
(``s3://bucket/calls/**/*.wav``), a ZIP, a manifest CSV or one recording. For each recording the
plan keeps where its bytes are and the listing's own metadata (size, modification time), which
together are its *fingerprint*: a re-run skips fingerprints already stored without reading a byte.

ZIPs are checked where they lie, with ranged reads of their directory and of each entry's first
bytes (count, sizes, compression ratio, traversal, symlinks, nested archives, content sniffing);
nothing is extracted, the worker that decodes an entry reads that entry. Everything that cannot
become a recording is kept with a reason, so the job document lists it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import posixpath
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import pyarrow.fs as pafs

from batch.storage import (
    GLOB_CHARS,
    Location,
    describe_error,
    list_glob,
    list_tree,
    locate,
    read_recording,
    read_text,
)
from pipeline.archive import ArchiveError, ZipLimits, inspect_zip
from pipeline.formats import AUDIO_SUFFIXES
from pipeline.metadata import MetadataResolver, load_manifest
from pipeline.records import CallMetadata
from pipeline.settings import Settings


@dataclass(slots=True)
class InputFile:
    path: str  # where the bytes are: a local path or an object URI (the ZIP's, for an entry)
    name: str  # how people know it: the path or URI given, or zip/entry
    metadata: CallMetadata | None = None
    member: str | None = None  # the entry inside the ZIP at ``path``
    size: int = -1
    mtime_ns: int = 0
    audio_sha256: str | None = None  # filled only by ``hash_files`` (re-analysis looks records up by it)

    @property
    def fingerprint(self) -> str:
        """Where + size + modification time: changes whenever the object is rewritten."""
        where = f"{self.path}!{self.member}" if self.member else self.path
        return f"{where}|{self.size}|{self.mtime_ns}"


@dataclass
class InputPlan:
    files: list[InputFile] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def plan_inputs(inputs: list[str], settings: Settings) -> InputPlan:
    planner = _Planner(settings)
    for item in inputs:
        try:
            planner.add_input(item)
        except (OSError, ValueError) as err:
            planner.plan.rejected[item] = f"cannot list {item}: {describe_error(err)}"
    planner.plan.files = _dedupe(planner.plan.files)
    return planner.plan


def _dedupe(files: list[InputFile]) -> list[InputFile]:
    """A file reached twice (a folder and its manifest) is processed once, keeping its metadata."""
    chosen: dict[tuple[str, str | None], InputFile] = {}
    for item in files:
        key = (item.path, item.member)
        known = chosen.get(key)
        if known is None or (known.metadata is None and item.metadata is not None):
            chosen[key] = item
    return list(chosen.values())


def _suffix(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


class _Planner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = ZipLimits.from_settings(settings)
        self.plan = InputPlan()

    def add_input(self, item: str) -> None:
        location = locate(item, self.settings)
        if GLOB_CHARS & set(location.path):
            if location.scheme:
                infos = list_glob(location)
            else:  # the local glob module knows hidden files and symlinked folders
                infos = location.fs.get_file_info(sorted(glob.glob(location.path, recursive=True)))
                infos = [i for i in infos if i.type == pafs.FileType.File]
            if not infos:
                self.plan.rejected[item] = "the pattern matched no files"
            for info in infos:
                self._add_object(location, info, self._display(item, location, info.path))
            return
        info = location.fs.get_file_info(location.path)
        if info.type == pafs.FileType.NotFound:
            # An S3 "folder" exists only through its objects; an empty prefix lists as not found.
            self.plan.rejected[item] = "no such file, folder or object (or nothing under that prefix)"
        elif info.type == pafs.FileType.Directory:
            for child in list_tree(location):
                if _suffix(child.path) in AUDIO_SUFFIXES or _suffix(child.path) in {".zip", ".csv"}:
                    self._add_object(location, child, self._display(item, location, child.path))
        else:
            self._add_object(location, info, item)

    @staticmethod
    def _display(item: str, location: Location, path: str) -> str:
        """Local files keep the spelling the user gave (relative stays relative); objects their URI."""
        if location.scheme:
            return location.uri(path)
        if GLOB_CHARS & set(item):
            return os.path.relpath(path) if not os.path.isabs(item) else path
        return os.path.join(item, os.path.relpath(path, location.path)) if path != location.path else item

    def _add_object(self, location: Location, info: pafs.FileInfo, name: str) -> None:
        where = Location(location.fs, info.path, location.scheme)
        suffix = _suffix(info.path)
        if suffix == ".zip":
            self._add_zip(where, info, name)
        elif suffix == ".csv":
            self._add_manifest(where, name)
        else:
            self.plan.files.append(
                InputFile(path=where.uri(info.path), name=name, size=int(info.size or 0), mtime_ns=_mtime(info))
            )

    def _add_zip(self, where: Location, info: pafs.FileInfo, name: str) -> None:
        try:
            with where.fs.open_input_file(where.path) as handle:
                report = inspect_zip(cast(IO[bytes], handle), self.limits)
        except ArchiveError as err:
            self.plan.rejected[name] = str(err)
            return
        except OSError as err:
            self.plan.rejected[name] = f"cannot read the ZIP: {describe_error(err)}"
            return
        for entry in report.accepted:
            self.plan.files.append(
                InputFile(
                    path=where.uri(where.path),
                    name=f"{name}/{entry.name}",
                    member=entry.name,
                    size=entry.size,
                    mtime_ns=_mtime(info),
                )
            )
        for entry_name, reason in report.rejected.items():
            self.plan.rejected[f"{name}/{entry_name}"] = reason

    def _add_manifest(self, where: Location, name: str) -> None:
        """A CSV naming recordings (URIs, or paths relative to the CSV) with their call metadata."""
        uri = where.uri(where.path)
        try:
            text = read_text(where) if where.scheme else None
            manifest = load_manifest(uri, text)
        except (OSError, ValueError) as err:
            self.plan.rejected[name] = str(err) if isinstance(err, ValueError) else describe_error(err)
            return
        self.plan.warnings.extend(manifest.warnings)
        resolver = MetadataResolver(self.settings, manifest)
        listed = self._stat_rows([row.key for row in manifest.rows])
        for row in manifest.rows:
            found = listed.get(row.key)
            if found is None:
                self.plan.rejected[f"{name}:{row.line}"] = f"manifest row names {row.file!r}, which does not exist"
                continue
            location, info = found
            display = row.key if location.scheme else str(Path(name).parent / row.file)
            self.plan.files.append(
                InputFile(
                    path=row.key,
                    name=display,
                    metadata=resolver.resolve(row.key),
                    size=int(info.size or 0),
                    mtime_ns=_mtime(info),
                )
            )

    def _stat_rows(self, keys: list[str]) -> dict[str, tuple[Location, pafs.FileInfo]]:
        """Size and mtime of each manifest row's file: one listing per folder, not one request per row."""
        by_folder: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            by_folder[key.rsplit("/", 1)[0]].append(key)
        found: dict[str, tuple[Location, pafs.FileInfo]] = {}
        for folder, members in by_folder.items():
            location = locate(folder, self.settings)
            if location.scheme:
                selector = pafs.FileSelector(location.path, recursive=False, allow_not_found=True)
                try:
                    infos = {location.uri(i.path): i for i in location.fs.get_file_info(selector)}
                except OSError:
                    infos = {}
            else:
                infos = {i.path: i for i in location.fs.get_file_info(members)}
            for key in members:
                info = infos.get(key)
                if info is not None and info.type == pafs.FileType.File:
                    found[key] = (location, info)
        return found


def _mtime(info: pafs.FileInfo) -> int:
    return int(info.mtime_ns or 0)


def hash_files(files: list[InputFile], settings: Settings, threads: int) -> None:
    """Fill audio_sha256 reading every file (re-analysis only: the batch job hashes on its workers)."""

    def digest(item: InputFile) -> None:
        try:
            item.audio_sha256 = hashlib.sha256(read_recording(item.path, item.member, settings)).hexdigest()
        except (OSError, ArchiveError):
            item.audio_sha256 = None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(digest, files))
