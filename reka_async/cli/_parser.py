"""The ``reka-async`` argument parser: one-line usage errors and the epilogs (the argument
types are in ``_values``)."""

from __future__ import annotations

import argparse
from typing import Any, Final, NoReturn

from .._version import __version__
from ._epilogs import (
    BATCH_EPILOG,
    BENCH_EPILOG,
    CHAT_EPILOG,
    EXPORT_EPILOG,
    MAIN_EPILOG,
    MOCK_EPILOG,
    MODELS_EPILOG,
)
from ._values import (
    error_rate,
    non_negative_float,
    non_negative_int,
    numbers,
    positive_float,
    positive_int,
    positive_usd,
    probability,
    sampling,
)

__all__ = ["PROG", "Parser", "build_parser"]

PROG: Final = "reka-async"


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``reka-async: error: ...``."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


# --------------------------------------------------------------------------- the parser


def _sampling_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    """The chat parameters a command takes on the command line (ranges as the client's)."""
    parser.add_argument(
        "--max-tokens",
        type=sampling("max_tokens", int),
        metavar="N",
        help=f"most tokens to generate, >= 1 ({default})",
    )
    parser.add_argument(
        "--temperature",
        type=sampling("temperature", float),
        metavar="F",
        help=f"sampling temperature, >= 0; 0 is greedy ({default})",
    )
    parser.add_argument(
        "--top-p",
        type=sampling("top_p", float),
        metavar="P",
        help=f"nucleus sampling mass, in (0, 1] ({default})",
    )
    parser.add_argument(
        "--top-k",
        type=sampling("top_k", int),
        metavar="K",
        help=f"sample from the K likeliest, >= 0 ({default})",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="sampling seed (reproducible runs)")
    parser.add_argument(
        "--stop",
        action="append",
        metavar="TEXT",
        help="stop before this text (repeat for several)",
    )


def _connection_options(
    parser: argparse.ArgumentParser, *, top: bool, insecure: bool = True
) -> None:
    # The same options on the main parser and on each subcommand, so they may come before or
    # after the subcommand; on subcommands they default to SUPPRESS so as not to clobber them.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--base-url",
        default=default,
        metavar="URL",
        help="API base URL (default: $REKA_BASE_URL, else https://api.reka.ai/v1)",
    )
    parser.add_argument(
        "--api-key",
        default=default,
        metavar="KEY",
        help="API key (discouraged: prefer the REKA_API_KEY environment variable)",
    )
    parser.add_argument(
        "--api",
        choices=("native", "openai"),
        default="native" if top else argparse.SUPPRESS,
        help="the API dialect: native POST /chat, or the OpenAI-compatible "
        "POST /chat/completions (default: native)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log to stderr: -v for INFO (retries), -vv for DEBUG",
    )
    if insecure:
        parser.add_argument(
            "--allow-insecure-http",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="allow a plain http:// --base-url to a host that is not loopback",
        )


def build_parser() -> tuple[Parser, dict[str, Parser]]:
    """The main parser and the parser of each command, by name."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog=PROG,
        description="Command-line client for the Reka Chat API "
        "(chat, batch jobs, benchmarks, mock server).",
        epilog=MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    chat = sub.add_parser(
        "chat",
        help="send one prompt and print the reply",
        description="Send one prompt and print the reply.",
        epilog=CHAT_EPILOG,
        formatter_class=formatter,
    )
    chat.add_argument("prompt", help="the user message ('-' reads it from stdin)")
    chat.add_argument("--model", default="reka-flash", help="model id (default: %(default)s)")
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument("--stream", action="store_true", help="print the reply as it is generated")
    chat.add_argument(
        "--stream-mode",
        choices=("auto", "cumulative", "delta"),
        default="auto",
        help="how a native stream's content is read: cumulative until an event proves deltas "
        "(auto), or pinned, for a server whose deltas can look cumulative (default: "
        "%(default)s)",
    )
    _sampling_options(chat, default="default: the API's")
    chat.add_argument(
        "--json", action="store_true", help="print the whole response as JSON (not streamed)"
    )
    chat.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="retries per request (default: %(default)s)",
    )
    chat.add_argument("--mock", action="store_true", help="use a built-in mock server")
    _connection_options(chat, top=False)

    batch = sub.add_parser(
        "batch",
        help="run a JSONL file of requests, writing one JSONL result per input",
        description="Run many chat requests from a file at bounded concurrency.",
        epilog=BATCH_EPILOG,
        formatter_class=formatter,
    )
    batch.add_argument("input", metavar="INPUT", help="JSONL or plain-text file, or - for stdin")
    batch.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="JSONL results")
    batch.add_argument(
        "--concurrency",
        type=positive_int,
        default=64,
        metavar="N",
        help="most requests in flight (default: %(default)s)",
    )
    batch.add_argument("--rpm", type=positive_float, metavar="N", help="requests-per-minute budget")
    batch.add_argument(
        "--tpm", type=positive_float, metavar="N", help="tokens-per-minute budget (estimated)"
    )
    batch.add_argument(
        "--model", default="reka-flash", help="model for lines naming none (default: %(default)s)"
    )
    batch.add_argument(
        "--format",
        choices=("jsonl", "text"),
        help="INPUT format (default: from its extension, .jsonl or .txt; stdin: jsonl)",
    )
    batch.add_argument(
        "--system", metavar="TEXT", help="a system message sent before each line's messages"
    )
    _sampling_options(batch, default="default for lines naming none")
    batch.add_argument(
        "--timeout", type=positive_float, metavar="S", help="seconds per request, retries apart"
    )
    batch.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failed request (exit 1)"
    )
    batch.add_argument(
        "--max-error-rate",
        type=error_rate,
        metavar="R",
        help="stop (exit 3, --resume continues) once more than R of the last 100 finished "
        "requests failed (bad input lines not counted)",
    )
    batch.add_argument(
        "--no-adaptive",
        action="store_true",
        help="keep --concurrency fixed (default: halve it while the API signals overload)",
    )
    batch.add_argument(
        "--cache",
        metavar="PATH",
        help="SQLite request cache: identical requests are answered from it (and stored)",
    )
    batch.add_argument(
        "--prices",
        metavar="FILE",
        help='JSON prices, USD per million tokens: {"model": {"input": 0.8, "output": 2.0}}',
    )
    batch.add_argument(
        "--max-cost",
        type=positive_usd,
        metavar="USD",
        help="stop (exit 3) before the job's cost could exceed USD (every run of the output "
        "counts); needs the model's price; holds while the server bills at most the bound "
        "(docs/guides/cli.md: Cost budget)",
    )
    batch.add_argument(
        "--media-tokens",
        type=non_negative_int,
        metavar="N",
        help="with --max-cost: the most tokens one image/video/audio/PDF part may be billed "
        "(without it a request with media is refused unsent)",
    )
    batch.add_argument(
        "--message-overhead",
        type=non_negative_int,
        default=8,
        metavar="N",
        help="with --max-cost: tokens per message the bound adds for the chat template (default 8)",
    )
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="print the first 3 requests' bodies, the estimated tokens and cost; send "
        "nothing, write nothing",
    )
    batch.add_argument(
        "--summary", metavar="FILE", help="write the summary (the whole job) as JSON to FILE"
    )
    batch.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="retries per request (default: %(default)s)",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing OUTPUT: skip the custom_ids already in it",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: send again the failures that can change (not input errors)",
    )
    batch.add_argument(
        "--rerun-changed",
        action="store_true",
        help="with --resume: send again inputs whose request changed (default: refuse)",
    )
    batch.add_argument(
        "--overwrite",
        action="store_true",
        help="start OUTPUT afresh if it exists (its results are discarded)",
    )
    batch.add_argument(
        "--raw-csv",
        action="store_true",
        help="a .csv OUTPUT keeps text cells starting with = + - @ verbatim (default: "
        "prefixed with ' so that a spreadsheet does not run them as formulas)",
    )
    batch.add_argument("--mock", action="store_true", help="use a built-in mock server")
    batch.add_argument(
        "--mock-latency-ms",
        type=non_negative_float,
        default=0.0,
        metavar="N",
        help="mock response latency (default: %(default)s)",
    )
    batch.add_argument(
        "--mock-fault-rate",
        type=probability,
        default=0.0,
        metavar="F",
        help="probability of a random mock fault, 0-1 (default: %(default)s)",
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    batch.add_argument(
        "--progress-interval",
        type=positive_float,
        metavar="S",
        help="seconds between progress redraws (default: 0.5 on a terminal, else 5)",
    )
    _connection_options(batch, top=False)

    models = sub.add_parser(
        "models",
        help="list the models (a table)",
        description="List the models available to the key, with what /models says of them.",
        epilog=MODELS_EPILOG,
        formatter_class=formatter,
    )
    models.add_argument("--ids", action="store_true", help="print only the ids, one a line")
    models.add_argument("--mock", action="store_true", help="use a built-in mock server")
    _connection_options(models, top=False)

    bench = sub.add_parser(
        "bench",
        help="measure throughput and latency (TTFT, TPOT, ITL) of the API under load",
        description="Benchmark the API: a workload at fixed concurrencies or request rates.",
        epilog=BENCH_EPILOG,
        formatter_class=formatter,
    )
    _bench_options(bench)
    _connection_options(bench, top=False, insecure=False)

    export = sub.add_parser(
        "export",
        help="convert a batch OUTPUT (JSONL) to CSV or Parquet",
        description="Write a batch job's JSONL output as CSV or Parquet, one row per input.",
        epilog=EXPORT_EPILOG,
        formatter_class=formatter,
    )
    export.add_argument("job", metavar="JOB", help="the JSONL output of reka-async batch")
    export.add_argument(
        "output", metavar="OUT", help="the file to write: .csv, or .parquet (reka-async[parquet])"
    )
    export.add_argument(
        "--raw-csv",
        action="store_true",
        help="keep CSV text cells starting with = + - @ verbatim (default: prefixed with ' "
        "so that a spreadsheet does not run them as formulas)",
    )

    mock = sub.add_parser(
        "mock-server",
        help="run the built-in mock Reka API server",
        description="Serve a mock Reka Chat API (deterministic replies, injectable faults).",
        epilog=MOCK_EPILOG,
        formatter_class=formatter,
    )
    mock.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")

    mock.add_argument(
        "--port", type=int, default=8000, help="port, 0 for any free one (default: %(default)s)"
    )
    mock.add_argument(
        "--latency-ms",
        type=non_negative_float,
        default=0.0,
        metavar="MS",
        help="delay before each response",
    )
    mock.add_argument(
        "--fault-rate",
        type=probability,
        default=0.0,
        metavar="F",
        help="probability of a random fault",
    )
    commands = {"chat": chat, "batch": batch, "models": models, "bench": bench, "export": export}
    return parser, {**commands, "mock-server": mock}


def _bench_options(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--model", default="reka-flash", help="model id (default: %(default)s)")
    load = bench.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency",
        type=numbers(positive_int, "positive integers, e.g. 1,16,64"),
        metavar="N[,N...]",
        help="closed-loop steps: requests in flight (default: 1)",
    )
    load.add_argument(
        "--rate",
        type=numbers(positive_float, "positive numbers, e.g. 5,10,20"),
        metavar="R[,R...]",
        help="open-loop steps: requests per second",
    )
    bench.add_argument(
        "--arrivals",
        choices=("poisson", "constant"),
        default="poisson",
        help="open loop: exponential (seeded) or equal gaps (default: %(default)s)",
    )
    bench.add_argument(
        "--burstiness",
        type=positive_float,
        default=1.0,
        metavar="B",
        help="poisson arrivals: gamma-distributed gaps of this shape, as vLLM's (1.0: "
        "Poisson; below 1 burstier; default: %(default)s)",
    )
    bench.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="each step sends for S seconds (cycling the --num-requests prompts) instead "
        "of sending --num-requests",
    )
    bench.add_argument(
        "--max-concurrency",
        type=positive_int,
        metavar="N",
        help="open loop: the most requests in flight (a due request waits, timed)",
    )
    bench.add_argument(
        "--num-requests",
        type=positive_int,
        default=100,
        metavar="N",
        help="requests per step (default: %(default)s)",
    )
    bench.add_argument("--stream", action="store_true", help="stream (TTFT, TPOT, ITL)")
    bench.add_argument(
        "--input-tokens",
        metavar="DIST",
        help="synthetic prompt lengths: N, uniform:LO,HI, normal:MEAN,STD or "
        "lognormal:MEAN,STD (default: 128)",
    )
    bench.add_argument(
        "--output-tokens",
        metavar="DIST",
        help="max_tokens of each request, as --input-tokens (default: 128; with --prompts, "
        "the lines' own)",
    )
    bench.add_argument(
        "--prompts",
        metavar="FILE",
        help='JSONL ({"prompt"|"messages", ...params}) or text (a prompt a line) instead '
        "of synthetic prompts; cycled",
    )
    bench.add_argument("--seed", type=int, default=0, help="seed of prompts and arrivals")
    bench.add_argument(
        "--slo", metavar="SPEC", help="goodput objectives, e.g. ttft=500ms,tpot=50ms,e2e=5s"
    )
    bench.add_argument(
        "--ramp-up",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="closed loop: spread the first requests over S seconds",
    )
    bench.add_argument(
        "--warmup",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="unmeasured requests first; the first must succeed (default: %(default)s)",
    )
    bench.add_argument("--timeout", type=positive_float, metavar="S", help="per request (s)")
    bench.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="retries per request (default: %(default)s: errors are reported, not hidden)",
    )
    bench.add_argument(
        "--json",
        metavar="FILE",
        help="write every sample and the config (with vLLM's result field names)",
    )
    bench.add_argument(
        "--requests-out",
        metavar="FILE",
        help="write a JSON line per request: timings, tokens, chunks and error",
    )
    bench.add_argument("--plot", metavar="DIR", help="write PNG plots (needs reka-async[plot])")
    bench.add_argument("--no-progress", action="store_true", help="no live progress line")
    bench.add_argument(
        "--progress-interval",
        type=positive_float,
        metavar="S",
        help="without a terminal: seconds between progress lines on stderr (default: 5)",
    )
    bench.add_argument(
        "--allow-insecure-http", action="store_true", help="allow http:// to a remote host"
    )
    bench.add_argument(
        "--mock",
        action="store_true",
        help="against the mock server in its own process (generation model below)",
    )
    bench.add_argument(
        "--mock-args",
        default="--ttft-ms 250 --tpot-ms 10",
        metavar="ARGS",
        help="options of the --mock server (default: %(default)r; see mock-server --help)",
    )
