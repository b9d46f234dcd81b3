"""The audio formats callaudit reads, and how to tell a file's kind from its first bytes: one table.

Everything that names a format reads it from here: the folder scan (which file names to pick up),
the content sniffing of batch archives and uploads (never trust a name), the media type a stored
upload is played back with, and the refusal that says what a non-audio file looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes read to decide what a file is: enough for every magic number below (tar's is at 257).
SNIFF_BYTES = 512


@dataclass(frozen=True)
class AudioFormat:
    kind: str  # the container's short name: stored uploads are <sha>.<kind>
    media_type: str
    suffixes: tuple[str, ...]
    magic: tuple[tuple[int, bytes], ...] = ()  # (offset, bytes); none: found by name only


AUDIO_FORMATS: tuple[AudioFormat, ...] = (
    AudioFormat("wav", "audio/wav", (".wav",), ((0, b"RIFF"),)),
    AudioFormat("ogg", "audio/ogg", (".ogg", ".opus", ".oga"), ((0, b"OggS"),)),
    AudioFormat("flac", "audio/flac", (".flac",), ((0, b"fLaC"),)),
    AudioFormat("mp3", "audio/mpeg", (".mp3",), ((0, b"ID3"),)),
    AudioFormat("m4a", "audio/mp4", (".m4a", ".mp4"), ((4, b"ftyp"),)),
    AudioFormat("amr", "audio/amr", (".amr",), ((0, b"#!AMR"),)),
    AudioFormat("webm", "audio/webm", (".webm",), ((0, b"\x1a\x45\xdf\xa3"),)),
    AudioFormat("aiff", "audio/aiff", (".aiff", ".aif"), ((0, b"FORM"),)),
    AudioFormat("wma", "audio/x-ms-wma", (".wma",), ((0, b"\x30\x26\xb2\x75"),)),
    # Found by their frame sync rather than a fixed magic (see sniff_audio).
    AudioFormat("aac", "audio/aac", (".aac",)),
    # Raw GSM 06.10 frames have no header at all: a folder scan takes them by name.
    AudioFormat("gsm", "audio/gsm", (".gsm",)),
)
AUDIO_SUFFIXES: frozenset[str] = frozenset(s for f in AUDIO_FORMATS for s in f.suffixes)
MEDIA_TYPES: dict[str, str] = {f.kind: f.media_type for f in AUDIO_FORMATS}

# Content that is not audio, with what to call it in messages; archives are never audio and never
# unpacked inside another archive, the rest is named so that a refusal says what the file looks like.
NOT_AUDIO_MAGIC: tuple[tuple[int, bytes, str, bool], ...] = (  # (offset, magic, what it is, an archive)
    (0, b"PK\x03\x04", "a ZIP archive", True),
    (0, b"PK\x05\x06", "a ZIP archive (empty)", True),
    (0, b"\x1f\x8b", "a gzip archive", True),
    (0, b"7z\xbc\xaf", "a 7-Zip archive", True),
    (0, b"Rar!", "a RAR archive", True),
    (0, b"BZh", "a bzip2 archive", True),
    (0, b"\xfd7zXZ\x00", "an xz archive", True),
    (257, b"ustar", "a tar archive", True),
    (0, b"%PDF", "a PDF document", False),
    (0, b"\x89PNG", "a PNG image", False),
    (0, b"\xff\xd8\xff", "a JPEG image", False),
    (0, b"GIF8", "a GIF image", False),
    (0, b"\x7fELF", "a program (ELF executable)", False),
    (0, b"MZ", "a Windows program", False),
    (0, b"RIFF", "a RIFF file that is not WAVE audio (video or image)", False),
)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _at(head: bytes, offset: int, magic: bytes) -> bool:
    return head[offset : offset + len(magic)] == magic


def sniff_audio(head: bytes) -> str | None:
    """The audio container the first bytes name ("wav", "mp3", "ogg", ...), or None if not audio we know."""
    for fmt in AUDIO_FORMATS:
        if any(_at(head, offset, magic) for offset, magic in fmt.magic):
            if fmt.kind == "wav" and head[8:12] not in (b"WAVE", b""):
                return None  # RIFF, but AVI video or WebP image
            return fmt.kind
    # MPEG audio frames without an ID3 tag start with an 11-bit frame sync.
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"
    # AAC in ADTS framing.
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "aac"
    return None


def archive_kind(head: bytes) -> str | None:
    """What archive the first bytes name ("a ZIP archive", ...), or None."""
    found = [what for offset, magic, what, archive in NOT_AUDIO_MAGIC if archive and _at(head, offset, magic)]
    return found[0] if found else None


def known_content(head: bytes) -> str | None:
    """What known non-audio content the first bytes name ("a PDF document", "a ZIP archive", ...), or None."""
    return next((what for offset, magic, what, _ in NOT_AUDIO_MAGIC if _at(head, offset, magic)), None)


def is_archive(head: bytes) -> bool:
    return archive_kind(head) is not None


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)
