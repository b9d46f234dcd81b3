"""Safe reading of ZIP archives of recordings (batch inputs and uploads share it).

Defences: entry count, total uncompressed size, per-entry compression ratio (zip bombs), path
traversal and absolute names, symlinks, nested archives, and non-audio entries found by content
sniffing rather than by file name. Every rejected entry is reported with a reason; the good ones
go on.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO

# The format table lives in pipeline.formats; these names stay importable from here.
from pipeline.formats import is_archive, sniff_audio
from pipeline.settings import Settings

__all__ = [
    "ArchiveError",
    "ZipEntry",
    "ZipLimits",
    "ZipReport",
    "inspect_zip",
    "is_archive",
    "read_entries",
    "sniff_audio",
]

@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 500
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 100.0
    max_entry_bytes: int = 2 * 1024**3

    @classmethod
    def from_settings(cls, settings: Settings) -> ZipLimits:
        """The limits batch inputs and uploads both apply (``serve.zip_*``, ``audio.max_file_bytes``)."""
        zips = settings.serve
        return cls(
            max_entries=zips.zip_max_entries,
            max_total_bytes=zips.zip_max_total_bytes,
            max_ratio=zips.zip_max_ratio,
            # One entry may not be larger than one recording may be, nor than the archive's whole budget.
            max_entry_bytes=min(settings.audio.max_file_bytes, zips.zip_max_total_bytes),
        )


@dataclass
class ZipEntry:
    name: str
    size: int
    kind: str


@dataclass
class ZipReport:
    accepted: list[ZipEntry] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class ArchiveError(ValueError):
    """The archive as a whole is refused (not a ZIP, too many entries, too large)."""


def _unsafe_name(name: str) -> str | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive"
    if ".." in path.parts:
        return "path traversal ('..') in archive entry name"
    return None


def inspect_zip(source: str | IO[bytes], limits: ZipLimits) -> ZipReport:
    """Check every entry without extracting anything; raise ArchiveError if the whole ZIP is refused."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise ArchiveError("the file is not a valid ZIP archive") from err
    report = ZipReport()
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > limits.max_entries:
            raise ArchiveError(f"the ZIP holds {len(infos)} files, over the limit of {limits.max_entries}")
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_total_bytes:
            raise ArchiveError(
                f"the ZIP would unpack to {declared / 1e6:.0f} MB, over the {limits.max_total_bytes / 1e6:.0f} MB limit"
            )
        for info in infos:
            name = info.filename
            reason = _unsafe_name(name)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "symbolic links are not accepted"
            if reason is None and info.file_size > limits.max_entry_bytes:
                reason = f"entry unpacks to {info.file_size / 1e6:.0f} MB, over the limit"
            if reason is None and info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
                reason = (
                    f"compression ratio {info.file_size / info.compress_size:.0f}:1 is over "
                    f"{limits.max_ratio:.0f}:1 (possible zip bomb)"
                )
            if reason is None:
                try:
                    with archive.open(info) as handle:
                        head = handle.read(16)
                except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError) as err:
                    reason = f"entry cannot be read ({type(err).__name__})"
                    head = b""
                if reason is None:
                    if is_archive(head):
                        reason = "nested archives are not accepted"
                    elif (kind := sniff_audio(head)) is None:
                        reason = "not an audio file (content is not a known audio format)"
                    else:
                        report.accepted.append(ZipEntry(name=name, size=info.file_size, kind=kind))
            if reason is not None:
                report.rejected[name] = reason
    return report


def _read_checked(archive: zipfile.ZipFile, name: str, limits: ZipLimits) -> bytes:
    """One entry's bytes, its size enforced on the real stream, not only on the header."""
    info = archive.getinfo(name)
    with archive.open(info) as handle:
        data = handle.read(limits.max_entry_bytes + 1)
    if len(data) > limits.max_entry_bytes or len(data) != info.file_size:
        raise ArchiveError("entry size differs from its header (damaged or crafted ZIP)")
    return data


def read_entries(source: str | IO[bytes], report: ZipReport, limits: ZipLimits) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of accepted entries, enforcing sizes on the real stream, not the header."""
    with zipfile.ZipFile(source) as archive:
        for entry in report.accepted:
            try:
                data = _read_checked(archive, entry.name, limits)
            except ArchiveError as err:
                report.rejected[entry.name] = str(err)
                continue
            yield entry.name, data


def read_entry(source: str | IO[bytes], name: str, limits: ZipLimits) -> bytes:
    """One entry accepted by ``inspect_zip`` earlier (a batch worker reads its own entry; with a
    seekable remote file only the directory and that entry are fetched). Raises ArchiveError."""
    try:
        with zipfile.ZipFile(source) as archive:
            return _read_checked(archive, name, limits)
    except KeyError as err:
        raise ArchiveError(f"the ZIP no longer holds {name!r} (replaced while the job ran?)") from err
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as err:
        raise ArchiveError(f"entry cannot be read ({type(err).__name__})") from err
