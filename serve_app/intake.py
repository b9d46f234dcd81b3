"""Upload intake: what a file really is (by content, never by name), ZIP defences, where uploads live.

Checks here are pure functions over bytes or a seekable file, so they are tested without a server.
The ZIP defences themselves (entry count, total size, per-entry ratio, traversal, symlinks, nested
archives, non-audio entries) live in ``pipeline.archive`` so the batch job and the app refuse the
same things; this module adds what an upload needs on top: a person-readable description of what a
refused file looks like, encrypted and empty entries, duplicate names, and the HTTP status to answer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pipeline.archive import ArchiveError, ZipEntry, ZipLimits, ZipReport, inspect_zip, read_entries
from pipeline.formats import MEDIA_TYPES, SNIFF_BYTES, is_zip, known_content, sniff_audio
from pipeline.settings import Settings

__all__ = ["MEDIA_TYPES", "SNIFF_BYTES", "UploadRefused", "check_audio", "check_zip", "sniff_audio"]

class UploadRefused(Exception):
    """The upload as a whole is refused; ``status`` is the HTTP status, ``detail`` says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def describe_content(head: bytes) -> str:
    """What non-audio content looks like, for messages: "a PDF document", "text", ..."""
    if not head:
        return "an empty file"
    known = known_content(head)
    if known is not None:
        return known
    stripped = head.lstrip()
    if stripped[:1] == b"<":
        return "an HTML or XML document"
    if stripped[:1] in (b"{", b"["):
        return "JSON or other text"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut in the middle of a multi-byte character at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "binary data in no audio format we know"
    if all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return "text"
    return "binary data in no audio format we know"


def not_audio_reason(head: bytes, name: str | None = None) -> str:
    """A refusal a person understands, naming what the content is and, if misleading, the name."""
    what = describe_content(head)
    suffix = Path(name).suffix.lower() if name else ""
    said = f" although its name ends in {suffix}" if suffix else ""
    return f"not an audio recording: the content is {what}{said}"


def check_audio(head: bytes, name: str) -> str:
    """The audio kind of a single uploaded file, or UploadRefused (415) with the reason."""
    kind = sniff_audio(head)
    if kind is not None:
        return kind
    if not head:
        raise UploadRefused(400, "the file is empty (0 bytes)")
    if is_zip(head):
        raise UploadRefused(415, "this is a ZIP archive: send it to /upload/zip/ instead")
    raise UploadRefused(415, not_audio_reason(head, name))


# ---------------------------------------------------------------------- ZIP


@dataclass
class Rejection:
    name: str
    reason: str


@dataclass
class ZipCheck:
    """The outcome of checking an archive: entries to process, and entries refused with a reason."""

    accepted: list[ZipEntry] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    report: ZipReport = field(default_factory=ZipReport)


def zip_limits(settings: Settings) -> ZipLimits:
    return ZipLimits.from_settings(settings)


def check_zip(source: IO[bytes], limits: ZipLimits) -> ZipCheck:
    """Check every entry of a ZIP without extracting anything.

    Raises UploadRefused for the archive as a whole: 415 if it is not a ZIP, 413 if it holds too
    many entries or would unpack to too much. Otherwise returns the accepted entries and, for every
    other entry, why it was refused.
    """
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    if not is_zip(head):
        raise UploadRefused(415, f"not a ZIP archive: the content is {describe_content(head)}")
    try:
        report = inspect_zip(source, limits)
    except ArchiveError as err:
        message = str(err)
        status = 415 if "not a valid ZIP" in message else 413
        raise UploadRefused(status, message) from err
    source.seek(0)
    check = ZipCheck(report=report)
    with zipfile.ZipFile(source) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        for name, reason in report.rejected.items():
            check.rejected.append(Rejection(name, _explain(archive, infos.get(name), reason)))
    seen: set[str] = set()
    for entry in report.accepted:
        info = infos.get(entry.name)
        key = entry.name.replace("\\", "/").lower()
        if key in seen:
            # Two entries of one name: which one a person meant cannot be known, so the later one goes.
            check.rejected.append(Rejection(entry.name, "duplicate entry name in the archive"))
        elif info is not None and info.file_size == 0:
            check.rejected.append(Rejection(entry.name, "the file is empty (0 bytes)"))
        else:
            seen.add(key)
            check.accepted.append(entry)
    source.seek(0)
    return check


def _explain(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, reason: str) -> str:
    """Sharpen pipeline.archive's reason where the upload can say more."""
    if info is None:
        return reason
    if info.flag_bits & 0x1:
        return "encrypted entries are not accepted (the archive is password-protected)"
    if reason.startswith("not an audio file"):
        if info.file_size == 0:
            return "the file is empty (0 bytes)"
        try:
            with archive.open(info) as handle:
                head = handle.read(SNIFF_BYTES)
        except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError):
            return reason
        return not_audio_reason(head, info.filename)
    return reason


def iter_zip_audio(source: IO[bytes], check: ZipCheck, limits: ZipLimits) -> Iterator[tuple[ZipEntry, bytes]]:
    """Yield each accepted entry with its bytes, one at a time (an archive may be larger than memory).

    Sizes are enforced on the real stream, not the header: an entry whose real size differs from
    its header is moved from ``check.accepted`` to ``check.rejected`` once the iteration ends.
    """
    source.seek(0)
    by_name = {e.name: e for e in check.accepted}
    before = set(check.report.rejected)
    report = ZipReport(accepted=list(check.accepted), rejected=check.report.rejected)
    try:
        for name, data in read_entries(source, report, limits):
            yield by_name[name], data
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as err:
        raise UploadRefused(422, "the ZIP archive is damaged: an entry could not be unpacked") from err
    for name in set(report.rejected) - before:
        check.rejected.append(Rejection(name, report.rejected[name]))
        check.accepted = [e for e in check.accepted if e.name != name]


# ---------------------------------------------------------------------- storage


def upload_dir(settings: Settings) -> Path:
    return settings.serve.upload_dir or (settings.home / "uploads")


class UploadStore:
    """Uploaded recordings, content-addressed (``<sha[:2]>/<sha>.<kind>``): a re-upload is stored once,
    and a call's audio is found from its record's ``audio_sha256`` alone."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, kind: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.{kind}"

    def save(self, sha256: str, kind: str, data: bytes) -> Path:
        path = self.path_for(sha256, kind)
        if path.exists() and path.stat().st_size == len(data):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (playback, a retry) never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def find(self, sha256: str) -> tuple[Path, str] | None:
        """The stored file of this audio and its kind, if this server keeps it."""
        if not sha256 or not all(c in "0123456789abcdef" for c in sha256):
            return None
        folder = self.root / sha256[:2]
        for kind in MEDIA_TYPES:
            path = folder / f"{sha256}.{kind}"
            if path.is_file():
                return path, kind
        return None
