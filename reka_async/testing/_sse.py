"""Server-sent events of the mock server: framing JSON payloads and sending a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from aiohttp import web

from ._faults import STREAM_ERROR_BODY
from ._json import loads


def close_transport(request: web.Request) -> None:
    """Close the connection after flushing what was written (a cut mid-response)."""
    transport = request.transport
    if transport is not None:
        transport.close()


class StreamWriter:
    """How a server frames and paces its streams.

    Args:
        chunk_latency_s: Delay between events (the server changes it in ``set_latency``).
        done: Append ``data: [DONE]`` after the last event.
        crlf: Use CRLF line endings.
        extras: Add ``event:``, ``id:`` and comment lines to each event and spread its
            JSON over several ``data:`` lines.
    """

    __slots__ = ("chunk_latency_s", "done", "extras", "nl")

    def __init__(self, *, chunk_latency_s: float, done: bool, crlf: bool, extras: bool) -> None:
        self.chunk_latency_s = chunk_latency_s
        self.done = done
        self.extras = extras
        self.nl = b"\r\n" if crlf else b"\n"

    def frame(self, payload: bytes, index: int, event: bytes = b"") -> bytes:
        """Frame one JSON payload as a server-sent event."""
        nl = self.nl
        if not self.extras:
            head = b"event: " + event + nl if event else b""
            return head + b"data: " + payload + nl + nl
        # Extras: a comment, an event name, an id, and the JSON spread over data: lines.
        lines = json.dumps(loads(payload), indent=1, ensure_ascii=False).split("\n")
        data = b"".join(b"data: " + line.encode() + nl for line in lines)
        name = event or b"message"
        return b": mock-reka" + nl + b"event: " + name + nl + b"id: %d" % index + nl + data + nl

    async def send(
        self,
        request: web.Request,
        headers: dict[str, str],
        payloads: list[bytes],
        count: int,
        *,
        error_event: bool = False,
        cut: bool = False,
        done: bool | None = None,
        deadlines: Sequence[float] | None = None,
    ) -> web.StreamResponse:
        """Send the first ``count`` events, then end, fail or cut the stream.

        ``done`` says whether a finished stream ends with ``data: [DONE]`` (None: as this
        writer's ``done`` says). ``deadlines`` (the generation model's) gives the loop time
        each event is due, instead of ``chunk_latency_s``; what follows the last event goes
        with it.
        """
        headers["Content-Type"] = "text/event-stream"
        headers["Cache-Control"] = "no-cache"
        response = web.StreamResponse(headers=headers)
        frames = [self.frame(p, i + 1) for i, p in enumerate(payloads[:count])]
        if error_event:
            frames.append(self.frame(STREAM_ERROR_BODY, count + 1, b"error"))
        elif not cut and (self.done if done is None else done):
            frames.append(b"data: [DONE]" + self.nl + self.nl)
        try:
            await response.prepare(request)
            delay = self.chunk_latency_s
            if deadlines is not None:
                await _paced(response, frames, deadlines)
            elif delay > 0.0:
                for i, frame in enumerate(frames):
                    if i:
                        await asyncio.sleep(delay)
                    await response.write(frame)
            elif frames:
                await response.write(b"".join(frames))
            if cut:
                close_transport(request)
            else:
                await response.write_eof()
        except ConnectionError:
            pass  # the client went away; nothing left to tell it
        return response


async def _paced(
    response: web.StreamResponse, frames: list[bytes], deadlines: Sequence[float]
) -> None:
    """Write each frame at its deadline; frames due together go in one write."""
    loop = asyncio.get_running_loop()
    last = deadlines[-1] if deadlines else loop.time()
    due = [deadlines[i] if i < len(deadlines) else last for i in range(len(frames))]
    i = 0
    while i < len(frames):
        j = i + 1
        while j < len(frames) and due[j] <= due[i]:
            j += 1
        wait = due[i] - loop.time()
        if wait > 0.0:
            await asyncio.sleep(wait)
        await response.write(b"".join(frames[i:j]))
        i = j
