"""Reading a request's body: size limits, a deadline, Content-Encoding, a client that leaves.

Every route that takes a body reads it through :func:`read_body`; the exceptions below are
turned into deliberate answers by :func:`leadtui.ingest.routes.guard`. A channel's handlers
live in modules of their own and import this one, never :mod:`leadtui.ingest.routes`.
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from leadtui.ingest.answers import BODY_TIMEOUT


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class SlowBody(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before its body arrived: nobody to answer."""


class Unreadable(Exception):
    """The body cannot be read as sent: a broken chunked or Content-Encoding stream."""

    def __init__(self, status: int, detail: str, raw: bytes = b"") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.raw = raw  # what arrived, for a route that keeps even an unreadable body


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body as sent, decoded (:func:`decoded`); :class:`TooLarge` past ``limit``.

    At most ``limit`` bytes are read: a larger body is refused as soon as it passes the limit
    (or at once, by its Content-Length). A client that goes away mid-body is
    :class:`ClientGone`; a broken chunked stream is :class:`Unreadable`.
    """
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise TooLarge(limit)
    except TimeoutError:
        raise SlowBody from None
    except RequestPayloadError:
        raise Unreadable(400, "the body could not be read (a broken chunked encoding)") from None
    except ConnectionError:
        raise ClientGone from None
    return decoded(request, bytes(body), limit)


_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decoded(request: web.Request, raw: bytes, limit: int) -> bytes:
    """``raw`` without its Content-Encoding (gzip or deflate), at most ``limit`` bytes of it."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in {"", "identity"}:
        return raw
    wbits = _ENCODINGS.get(encoding)
    if wbits is None:
        raise Unreadable(
            415, "the Content-Encoding is not supported; send the body as is, or gzip", raw
        )
    attempts = [wbits, -zlib.MAX_WBITS] if encoding == "deflate" else [wbits]
    for bits in attempts:  # "deflate" is zlib-wrapped by the RFC, raw by some clients
        inflater = zlib.decompressobj(bits)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise TooLarge(limit)
        if inflater.eof and not inflater.unused_data:
            return out
    raise Unreadable(400, f"the body is not valid {encoding} (Content-Encoding)", raw)
