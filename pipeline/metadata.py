"""Call metadata (agent, customer, call time, direction, queue) from file names and/or a manifest CSV.

Two sources, as AWS's post-call analytics does:

* ``store.filename_pattern``: a regular expression searched in the file name (then in the whole
  path, for patterns that name folders), with named groups ``agent_id``, ``customer_id``,
  ``customer_phone``, ``call_time``, ``direction``, ``queue``; any other named group lands in
  ``metadata.extra``. Example for ``AG042_CU1001_20240131T101500_in.wav``::

      (?P<agent_id>AG\\d+)_(?P<customer_id>CU\\d+)_(?P<call_time>\\d{8}T\\d{6})_(?P<direction>in|out)

* ``store.manifest_file``: a CSV with a ``file`` column (also ``file_name``, ``filename``, ``path``,
  ``audio``, ``recording``) and any of the metadata columns (``agent``, ``customer``, ``phone``,
  ``time`` ... are accepted as aliases); other columns land in ``metadata.extra``. A file matches a
  row by path (relative paths are taken from the manifest's folder) or, failing that, by file name.

A manifest value wins over the file name's for the same field; a blank cell does not erase one.
Call times use ``store.call_time_format`` (strptime) when set, else ISO 8601 or a compact form such
as ``20240131T101500`` / ``20240131-101500`` / epoch seconds; times without a zone are in
``store.call_time_zone``.

Nothing fails hard: a file with no metadata gets an empty CallMetadata whose ``extra`` notes why,
unparseable values are left empty with a note, and manifest rows that match no file are reported
by ``unmatched_rows()`` so the job can record them.
"""

from __future__ import annotations

import csv
import logging
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.records import CallMetadata
from pipeline.settings import Settings

log = logging.getLogger(__name__)

FIELDS = ("agent_id", "customer_id", "customer_phone", "call_time", "direction", "queue")
SOURCE_KEY = "metadata_source"
NOTE_KEY = "metadata_note"

FILE_COLUMNS = ("file", "file_name", "filename", "path", "audio", "audio_file", "recording")
COLUMN_ALIASES = {
    "agent": "agent_id",
    "agentid": "agent_id",
    "customer": "customer_id",
    "customerid": "customer_id",
    "phone": "customer_phone",
    "customer_number": "customer_phone",
    "phone_number": "customer_phone",
    "time": "call_time",
    "start_time": "call_time",
    "call_start": "call_time",
    "timestamp": "call_time",
    "datetime": "call_time",
    "call_direction": "direction",
    "queue_name": "queue",
}
_INBOUND = {"in", "inbound", "incoming", "inb", "i"}
_OUTBOUND = {"out", "outbound", "outgoing", "outb", "o"}
_COMPACT_FORMATS = (
    "%Y%m%d%H%M%S",
    "%Y%m%d-%H%M%S",
    "%Y%m%d_%H%M%S",
    "%Y-%m-%d_%H-%M-%S",
    "%Y-%m-%dT%H-%M-%S",
    "%Y-%m-%d %H-%M-%S",
    "%Y-%m-%d_%H%M%S",
    "%Y%m%d%H%M",
)


def _zone(name: str) -> timezone | ZoneInfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Istanbul')") from err


def parse_call_time(text: str, fmt: str | None = None, zone: str = "UTC") -> datetime:
    """A call time as an aware datetime; raises ValueError with the text in the message."""
    value = text.strip()
    parsed: datetime | None = None
    if fmt:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError as err:
            raise ValueError(f"call time {value!r} does not match the format {fmt!r}") from err
    elif value.isdigit() and len(value) in (10, 13):
        seconds = int(value) / (1000 if len(value) == 13 else 1)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            for candidate in _COMPACT_FORMATS:
                try:
                    parsed = datetime.strptime(value, candidate)
                    break
                except ValueError:
                    continue
    if parsed is None:
        raise ValueError(f"call time {value!r} is not a date and time this can read (set store.call_time_format)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(zone))
    return parsed.astimezone(timezone.utc)


def parse_direction(text: str) -> str | None:
    word = text.strip().lower()
    if word in _INBOUND:
        return "inbound"
    if word in _OUTBOUND:
        return "outbound"
    return None


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass
class _Partial:
    """Metadata values found so far, with notes about what could not be used."""

    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def take(self, raw: dict[str, str | None], origin: str, fmt: str | None, zone: str) -> None:
        for name, value in raw.items():
            text = _clean(value)
            if text is None:
                continue
            if name == "call_time":
                try:
                    self.values[name] = parse_call_time(text, fmt, zone)
                except ValueError as err:
                    self.notes.append(f"{origin}: {err}")
            elif name == "direction":
                direction = parse_direction(text)
                if direction is None:
                    self.notes.append(f"{origin}: direction {text!r} is neither inbound nor outbound")
                else:
                    self.values[name] = direction
            elif name in FIELDS:
                self.values[name] = text
            else:
                self.extra[name] = text


@dataclass
class ManifestRow:
    file: str
    line: int
    values: dict[str, str | None]
    key: str


@dataclass
class Manifest:
    """Rows of a manifest CSV, indexed by normalised path and by file name."""

    path: PurePath  # for naming it in messages; ``base`` is where relative rows start
    rows: list[ManifestRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _by_path: dict[str, ManifestRow] = field(default_factory=dict, repr=False)
    _by_name: dict[str, list[ManifestRow]] = field(default_factory=dict, repr=False)

    def add(self, row: ManifestRow) -> None:
        previous = self._by_path.get(row.key)
        if previous is not None:
            self.warnings.append(
                f"{self.path.name} line {row.line}: {row.file!r} is also on line {previous.line}; "
                f"line {row.line} is used"
            )
            self.rows.remove(previous)
            self._by_name[PurePath(previous.key).name].remove(previous)
        self.rows.append(row)
        self._by_path[row.key] = row
        self._by_name.setdefault(PurePath(row.key).name, []).append(row)

    def lookup(self, path: str) -> tuple[ManifestRow | None, str | None]:
        """The row for ``path`` and, when none is certain, why."""
        row = self._by_path.get(_normalise(path))
        if row is not None:
            return row, None
        candidates = self._by_name.get(PurePath(path).name, [])
        if len(candidates) == 1:
            return candidates[0], None
        if len(candidates) > 1:
            # Several rows share the file name: take the one whose relative path ends the file's path.
            posix = PurePath(path).as_posix()
            suffixed = [r for r in candidates if posix.endswith("/" + PurePath(r.file).as_posix().lstrip("./"))]
            if len(suffixed) == 1:
                return suffixed[0], None
            lines = ", ".join(str(r.line) for r in candidates)
            return None, f"manifest lines {lines} all name {PurePath(path).name!r}; none is used"
        return None, None


def _is_uri(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def _normalise(path: str, base: str | Path | None = None) -> str:
    """A comparable key: absolute local paths, or URIs with '..' and doubled slashes resolved."""
    if _is_uri(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme.lower()}://{posixpath.normpath(rest)}"
    if base is not None and _is_uri(str(base)):
        return _normalise(str(base).rstrip("/") + "/" + path)
    joined = path if os.path.isabs(path) or base is None else os.path.join(base, path)
    return os.path.normpath(os.path.abspath(joined))


def load_manifest(path: str | Path, text: str | None = None) -> Manifest:
    """Read a manifest CSV. Problems with single rows become warnings; an unusable file raises ValueError.

    ``path`` may be an object URI (``s3://bucket/day/manifest.csv``) whose ``text`` the caller read;
    its ``file`` cells may be URIs, or paths relative to the manifest's folder in the same store.
    """
    remote = _is_uri(str(path))
    base: str | Path = str(path).rsplit("/", 1)[0] if remote else Path(path).parent
    where: PurePath = PurePosixPath(str(path)) if remote else Path(path)
    manifest = Manifest(path=where)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as err:
            raise ValueError(f"cannot read the manifest {path}: {err.strerror or err}") from err
    # The header decides the delimiter: spreadsheet exports in many locales use ";" (or tabs), and
    # csv.Sniffer guesses wrong as soon as one row has a stray cell.
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise ValueError(f"the manifest {path} is empty")
    columns = [COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    file_col = next((i for i, c in enumerate(columns) if c in FILE_COLUMNS), None)
    if file_col is None:
        raise ValueError(
            f"the manifest {path} has no file column: name one of its columns {', '.join(FILE_COLUMNS)} "
            f"(its columns are: {', '.join(h.strip() for h in header)})"
        )
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(columns):
            manifest.warnings.append(
                f"{where.name} line {line}: {len(cells)} cells for {len(columns)} columns; "
                "extra cells ignored, missing ones left empty"
            )
        file = cells[file_col].strip() if file_col < len(cells) else ""
        if not file:
            manifest.warnings.append(f"{where.name} line {line}: no file name; row ignored")
            continue
        values = {c: (cells[i] if i < len(cells) else None) for i, c in enumerate(columns) if i != file_col and c}
        manifest.add(ManifestRow(file=file, line=line, values=values, key=_normalise(file, base)))
    for warning in manifest.warnings:
        log.warning("%s", warning)
    return manifest


class MetadataResolver:
    """``resolve(path)`` -> CallMetadata, from ``store.filename_pattern`` and/or the manifest."""

    def __init__(self, settings: Settings, manifest: Manifest | str | Path | None = None) -> None:
        options = settings.store
        self.time_format = options.call_time_format
        self.zone = options.call_time_zone
        _zone(self.zone)  # fail now, with a clear message, rather than on the first file
        self.pattern = re.compile(options.filename_pattern) if options.filename_pattern else None
        source = manifest if manifest is not None else options.manifest_file
        self.manifest = load_manifest(source) if isinstance(source, str | Path) else source
        self._matched: set[str] = set()

    @property
    def warnings(self) -> list[str]:
        return list(self.manifest.warnings) if self.manifest else []

    def resolve(self, path: str | os.PathLike[str]) -> CallMetadata:
        return self.resolve_with_notes(path)[0]

    def resolve_with_notes(self, path: str | os.PathLike[str]) -> tuple[CallMetadata, list[str]]:
        """The metadata for a file and the notes worth recording about it (also kept in ``extra``)."""
        path = os.fspath(path)
        found = _Partial()
        sources: list[str] = []
        if self.pattern is not None:
            match = self.pattern.search(PurePath(path).name) or self.pattern.search(PurePath(path).as_posix())
            if match is None:
                found.notes.append(f"file name {PurePath(path).name!r} does not match store.filename_pattern")
            elif any(v for v in match.groupdict().values()):
                found.take(match.groupdict(), "file name", self.time_format, self.zone)
                sources.append("filename")
        if self.manifest is not None:
            row, why = self.manifest.lookup(path)
            if why:
                found.notes.append(why)
            if row is not None:
                self._matched.add(row.key)
                found.take(row.values, f"manifest line {row.line}", self.time_format, self.zone)
                sources.append("manifest")
            elif why is None:
                found.notes.append(f"no manifest row for {PurePath(path).name!r}")
        if self.pattern is None and self.manifest is None:
            found.notes.append("no metadata source configured (store.filename_pattern or store.manifest_file)")
        extra = dict(found.extra)
        if sources and found.values:
            extra[SOURCE_KEY] = "+".join(sources)
        else:
            extra[SOURCE_KEY] = "none"
            found.notes.insert(0, "no call metadata found")
        if found.notes:
            extra[NOTE_KEY] = "; ".join(found.notes)
        metadata = CallMetadata(**found.values, extra=extra)
        return metadata, found.notes

    def unmatched_rows(self, files: Iterable[str | os.PathLike[str]] | None = None) -> list[ManifestRow]:
        """Manifest rows that matched no file: of ``files`` if given, else of every ``resolve`` so far."""
        if self.manifest is None:
            return []
        if files is None:
            matched = self._matched
        else:
            matched = set()
            for file in files:
                row, _ = self.manifest.lookup(os.fspath(file))
                if row is not None:
                    matched.add(row.key)
        return [row for row in self.manifest.rows if row.key not in matched]

    def unmatched_warnings(self, files: Iterable[str | os.PathLike[str]] | None = None) -> list[str]:
        name = self.manifest.path.name if self.manifest else "manifest"
        return [f"{name} line {r.line}: no recording named {r.file!r}" for r in self.unmatched_rows(files)]
