"""Request bodies shared by the in-process API tests and the full Ray Serve tests."""

from __future__ import annotations

from collections.abc import Iterator


def chunked_oversize_upload(chunks: int = 40, chunk_bytes: int = 100_000) -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart audio upload sent without Content-Length (a generator body), bigger than the test limit.

    The size limit must be enforced while such a body streams in, since there is no header to check.
    """
    boundary = "limitboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.ogg"\r\n'
        "Content-Type: audio/ogg\r\n\r\nOggS"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(chunks):
            yield b"\x00" * chunk_bytes
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), {"content-type": f"multipart/form-data; boundary={boundary}"}
