"""The command line of the standalone mock server, ``python -m reka_async.testing``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Callable, Sequence

from ._catalogue import MODELS_SHAPES
from ._faults import DEFAULT_FAULT_KINDS, FAULTS
from ._generation import GenerationModel
from ._limiters import LIMITER_KINDS
from ._process import ANNOUNCE_PREFIX
from ._server import MockRekaServer


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reka_async.testing",
        description="Serve a mock Reka Chat API (deterministic replies, injectable faults).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before headers")
    parser.add_argument(
        "--chunk-latency-ms", type=float, default=0.0, help="delay between stream events"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="probability of a random fault"
    )
    parser.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help=f"comma-separated faults to draw from (known: {','.join(sorted(FAULTS))})",
    )
    parser.add_argument(
        "--api-key", default=None, help="the only key accepted (default: any non-empty key)"
    )
    parser.add_argument(
        "--stream-chunks", type=int, default=None, help="events per stream (default: per word)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault selection")
    parser.add_argument("--rpm-limit", type=int, default=None, help="requests per minute")
    parser.add_argument(
        "--rate-limit",
        default=None,
        metavar="N/WINDOW",
        help="a limiter with truthful x-ratelimit-* headers, e.g. 50/s or 10/5s",
    )
    parser.add_argument(
        "--rate-limit-kind",
        choices=LIMITER_KINDS,
        default="fixed",
        help="the limiter behind --rate-limit, --rpm-limit and --token-limit: fixed windows "
        "aligned to the clock, a sliding window, a token bucket (OpenAI's headers) or a "
        "bucket with no x-ratelimit-* headers (bare); default: fixed",
    )
    parser.add_argument(
        "--token-limit",
        default=None,
        metavar="N/WINDOW",
        help="a limit of the tokens billed (input and output), e.g. 5000/s or 100000/min, of "
        "--rate-limit-kind; its state in x-ratelimit-*-tokens headers (none for bare)",
    )
    parser.add_argument(
        "--retry-after", type=float, default=1.0, help="retry-after of rate-limit 429s (s)"
    )
    parser.add_argument("--sse-done", action="store_true", help="end streams with [DONE]")
    parser.add_argument(
        "--native-stream",
        choices=("cumulative", "delta"),
        default="cumulative",
        help="chunk.content of /v1/chat streams: the text so far, or each event's new text",
    )
    parser.add_argument(
        "--native-stream-trailer",
        action="store_true",
        help="end /v1/chat streams with a usage-only event, then [DONE]",
    )
    parser.add_argument(
        "--models-shape",
        choices=MODELS_SHAPES,
        default=None,
        help="the body of GET /v1/models for every caller: [{id}], the OpenAI list, or a "
        "list of ids (default: the OpenAI list to a Bearer token, [{id}] to X-Api-Key alone)",
    )
    parser.add_argument(
        "--reject-tool-role",
        action="store_true",
        help="answer 500 to role 'tool' messages on /v1/chat/completions",
    )
    generation = parser.add_argument_group(
        "generation model",
        "any of these paces answers like an inference server (and runs them to max_tokens)",
    )
    generation.add_argument(
        "--ttft-ms", type=float, default=None, help="base time to first token (ms)"
    )
    generation.add_argument(
        "--prefill-ms-per-token",
        type=float,
        default=None,
        help="time to first token added per input token (ms)",
    )
    generation.add_argument(
        "--tpot-ms", type=float, default=None, help="time per output token after the first (ms)"
    )
    generation.add_argument(
        "--capacity", type=int, default=None, help="most generations at once; others queue"
    )
    generation.add_argument(
        "--jitter", type=float, default=None, help="relative jitter of every delay, 0-1"
    )
    parser.add_argument(
        "--no-uvloop",
        dest="uvloop",
        action="store_false",
        help="use the default asyncio loop even when uvloop is installed",
    )
    return parser.parse_args(argv)


def _new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    """Return a uvloop loop when asked for and installed (faster serving), else asyncio's."""
    if use_uvloop:
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def _generation(args: argparse.Namespace) -> GenerationModel | None:
    """The generation model the options ask for, or None when they name none."""
    given = (args.ttft_ms, args.prefill_ms_per_token, args.tpot_ms, args.capacity, args.jitter)
    if all(value is None for value in given):
        return None
    return GenerationModel(
        ttft_s=(args.ttft_ms or 0.0) / 1000.0,
        prefill_s_per_token=(args.prefill_ms_per_token or 0.0) / 1000.0,
        tpot_s=(args.tpot_ms or 0.0) / 1000.0,
        capacity=args.capacity,
        jitter=args.jitter or 0.0,
        seed=args.seed,
    )


async def _serve(args: argparse.Namespace, announce: Callable[[str], None]) -> None:
    server = MockRekaServer(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency_s=args.latency_ms / 1000.0,
        chunk_latency_s=args.chunk_latency_ms / 1000.0,
        stream_chunks=args.stream_chunks,
        fault_rate=args.fault_rate,
        fault_kinds=[k.strip() for k in args.fault_kinds.split(",") if k.strip()],
        seed=args.seed,
        retry_after_s=args.retry_after,
        rpm_limit=args.rpm_limit,
        rate_limit=args.rate_limit,
        rate_limit_kind=args.rate_limit_kind,
        token_limit=args.token_limit,
        # A long-running server must not grow without bound.
        record_requests=False,
        sse_done=args.sse_done,
        native_stream=args.native_stream,
        native_stream_trailer=args.native_stream_trailer,
        models_shape=args.models_shape,
        reject_tool_role=args.reject_tool_role,
        generation=_generation(args),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    async with server:
        announce(server.base_url)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mock server until SIGINT or SIGTERM.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after a clean shutdown, 1 when the address cannot be bound,
        2 for invalid options.
    """
    args = _parse_args(argv)

    def announce(base_url: str) -> None:
        print(f"{ANNOUNCE_PREFIX}{base_url}", flush=True)

    loop = _new_event_loop(args.uvloop)
    try:
        loop.run_until_complete(_serve(args, announce))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - signal raced the handler install
        pass
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
    return 0
