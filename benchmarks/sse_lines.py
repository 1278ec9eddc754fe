"""How the SSE decoder's cost grows with the length of one line fed in small pieces.

    python -m benchmarks.sse_lines                 # 2, 4 and 8 MiB lines in 4 KiB pieces
    python -m benchmarks.sse_lines --sizes 2 8 32  # other sizes (MiB)

A server (or a proxy) may send one huge ``data:`` line, and the network delivers it in small
pieces. A decoder that re-scans or copies what it already holds on every piece costs the
square of the line length (8 MiB then costs 16 times 2 MiB); a linear one about 4 times.
Prints the CPU seconds of each size (best of ``--repeat``) and each one's ratio to the first.
No figure here is asserted anywhere; the suite counts the bytes the decoder joins instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``reka_async`` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reka_async._sse import SSEDecoder

MIB = 1024 * 1024


def feed_one_line(size: int, piece: int) -> float:
    """CPU seconds to decode one event whose data line is ``size`` bytes, fed ``piece`` bytes
    at a time."""
    chunk = b"x" * piece
    pieces = size // piece
    decoder = SSEDecoder()
    start = time.process_time()
    decoder.feed(b"data: ")
    for _ in range(pieces):
        decoder.feed(chunk)
    events = decoder.feed(b"\n\n")
    elapsed = time.process_time() - start
    assert len(events) == 1
    assert len(events[0].data) == pieces * piece
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_lines")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8], help="MiB")
    parser.add_argument("--piece", type=int, default=4096, help="bytes per feed")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    first: float | None = None
    print(f"one line fed in {args.piece}-byte pieces; CPU seconds, best of {args.repeat}")
    for megabytes in args.sizes:
        best = min(feed_one_line(megabytes * MIB, args.piece) for _ in range(args.repeat))
        first = best if first is None else first
        print(f"{megabytes:>5} MiB  {best:8.4f} s  {best / first:6.2f}x the first size")


if __name__ == "__main__":
    main()
