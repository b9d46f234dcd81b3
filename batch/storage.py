"""Where recordings live: local paths or object-store URIs, read through pyarrow's filesystems.

pyarrow.fs is the layer Ray Data itself reads with (``ray.data.read_*``), so ``s3://``, ``gs://``
and ``abfs://`` behave here as users of Ray Data expect; schemes pyarrow lacks go through fsspec
(wrapped the way Ray Data wraps it). Credentials come from each cloud's usual chain: environment
variables, config files, an instance role or workload identity. The S3 endpoint and region come
from ``batch.s3_endpoint_url`` / ``batch.s3_region`` or the environment (``AWS_ENDPOINT_URL``,
``AWS_REGION``), so a MinIO/Ceph/loopback server works the same way.

The driver only lists (``FileInfo``: path, size, modification time); bytes are read by the workers
that decode them (``read_recording``), streamed, never more than the size limit plus one byte.
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from typing import IO, cast

import pyarrow.fs as pafs

from pipeline.archive import ZipLimits, read_entry
from pipeline.settings import Settings

_S3 = {"s3", "s3a"}
_GCS = {"gs", "gcs"}
_AZURE = {"abfs", "abfss", "az", "adl"}
GLOB_CHARS = frozenset("*?[")


def is_uri(text: str) -> bool:
    """An object-store (or any fsspec) URI, as opposed to a local path (``file://`` counts as local)."""
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return len(scheme) > 1 and scheme.isidentifier() and scheme != "file"


@dataclass(frozen=True)
class Location:
    """A filesystem and a path inside it; ``uri`` is how the place is written for people and workers."""

    fs: pafs.FileSystem
    path: str
    scheme: str  # "" for local paths

    def uri(self, path: str) -> str:
        """The URI (or local path) of ``path`` inside this filesystem."""
        return f"{self.scheme}://{path}" if self.scheme else path

    def join(self, relative: str) -> Location:
        base = posixpath.dirname(self.path)
        return Location(self.fs, posixpath.normpath(posixpath.join(base, relative)), self.scheme)


@functools.lru_cache(maxsize=16)
def _filesystem(scheme: str, netloc: str, endpoint: str | None, region: str | None) -> pafs.FileSystem:
    """One filesystem object per process and store (they hold connection pools)."""
    if scheme in _S3:
        options: dict[str, object] = {}
        if endpoint:
            options["endpoint_override"] = endpoint
            # An endpoint given by hand (MinIO, a loopback server) rarely has a region to resolve.
            options["region"] = region or "us-east-1"
        elif region:
            options["region"] = region
        if options:
            return pafs.S3FileSystem(**options)
        # No overrides: from_uri resolves the bucket's own region, like Ray Data does.
        return pafs.FileSystem.from_uri(f"s3://{netloc}/")[0]
    if scheme in _GCS:
        return pafs.GcsFileSystem()
    try:
        return pafs.FileSystem.from_uri(f"{scheme}://{netloc}/")[0]
    except (ValueError, OSError):  # pyarrow has no native filesystem for this scheme
        import fsspec

        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme)))


def locate(text: str, settings: Settings) -> Location:
    """The filesystem and path for a local path or a URI such as ``s3://bucket/calls/``."""
    if not is_uri(text):
        local = text[len("file://") :] if text.startswith("file://") else text
        return Location(pafs.LocalFileSystem(), posixpath.abspath(local) if local else local, "")
    # Split by hand: urlsplit would take a glob's '?' for the start of a query string.
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    netloc, slash, key = rest.partition("/")
    opts = settings.batch
    fs = _filesystem(scheme, netloc, opts.s3_endpoint_url, opts.s3_region)
    if scheme in _AZURE and "@" in netloc:
        # abfs://container@account.dfs.core.windows.net/path: pyarrow's paths start at the container.
        netloc = netloc.split("@", 1)[0]
    path = netloc + slash + key
    return Location(fs, path.rstrip("/") if path.endswith("/") and len(path) > 1 else path, scheme)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A shell glob as a regex over '/'-separated paths; ``**`` spans folders (as in glob's recursive mode)."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def list_glob(location: Location) -> list[pafs.FileInfo]:
    """Objects matching a glob in ``location.path``: one recursive listing below its fixed prefix."""
    path = location.path
    first = min(path.index(c) for c in GLOB_CHARS if c in path)
    base = path[:first].rsplit("/", 1)[0]
    regex = glob_regex(path)
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    return [
        info
        for info in location.fs.get_file_info(selector)
        if info.type == pafs.FileType.File and regex.match(info.path)
    ]


def list_tree(location: Location) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(location.path, recursive=True, allow_not_found=True)
    infos = [i for i in location.fs.get_file_info(selector) if i.type == pafs.FileType.File]
    return sorted(infos, key=lambda i: i.path)


def read_text(location: Location, limit: int = 64 * 1024**2) -> str:
    """A small text object (a manifest), refused above ``limit`` bytes."""
    with location.fs.open_input_stream(location.path) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{location.uri(location.path)} is over {limit // 1024**2} MB: not a manifest")
    return bytes(data).decode("utf-8-sig")


def describe_error(err: BaseException) -> str:
    """What went wrong reading an object, in words (the SDK's message without its stack)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    lowered = text.lower()
    if "nosuchbucket" in lowered or ("bucket" in lowered and "not found" in lowered):
        return "the bucket does not exist (deleted or renamed while the job ran?)"
    if "nosuchkey" in lowered or "path does not exist" in lowered or "not found" in lowered:
        return "the object does not exist (deleted while the job ran?)"
    if "access denied" in lowered or "accessdenied" in lowered or "forbidden" in lowered:
        return "access denied: check the credentials or the instance role's policy"
    return text[:300]


def read_recording(path: str, member: str | None, settings: Settings) -> bytes:
    """The bytes of one recording (an object, a local file, or an entry of a ZIP), size-checked.

    Raises OSError (unreadable, too large) or ArchiveError (a ZIP entry that does not match its header).
    """
    location = locate(path, settings)
    try:
        return _read(location, member, settings)
    except FileNotFoundError as err:
        raise _why_missing(location) from err


def _why_missing(location: Location) -> FileNotFoundError:
    """Object stores answer "not found" alike for a missing key and a missing bucket: tell them apart."""
    if location.scheme:
        bucket = location.path.split("/", 1)[0]
        try:
            gone = location.fs.get_file_info(bucket).type == pafs.FileType.NotFound
        except OSError:
            gone = False
        if gone:
            return FileNotFoundError(f"the bucket {bucket!r} does not exist (deleted or renamed while the job ran?)")
    return FileNotFoundError("the object does not exist (deleted while the job ran?)")


def _read(location: Location, member: str | None, settings: Settings) -> bytes:
    limit = settings.audio.max_file_bytes
    if member is None:
        with location.fs.open_input_stream(location.path) as stream:
            data = bytes(stream.read(limit + 1))
        if len(data) > limit:
            raise OSError(f"the file is over the {limit / 1e6:.0f} MB limit (audio.max_file_bytes)")
        return data
    # A ZIP is read with ranged requests: its directory, then this entry only.
    with location.fs.open_input_file(location.path) as handle:
        return read_entry(cast(IO[bytes], handle), member, ZipLimits.from_settings(settings))
