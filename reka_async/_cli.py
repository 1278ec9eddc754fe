"""The ``reka-async`` command line: ``chat``, ``batch``, ``models`` and ``mock-server``.

``batch`` is the main job: it streams a JSONL (or plain-text) file through ``BatchRunner`` and
appends one JSON line per input to the output as each result arrives, so an interrupted run
loses at most the requests in flight and ``--resume`` picks up where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Final, NoReturn, TypeVar

from ._client import DEFAULT_MAX_CONNECTIONS, AsyncClient
from ._exceptions import (
    BatchAbortedError,
    InvalidRequestError,
    MissingAPIKeyError,
    RekaError,
)
from ._version import __version__
from ._wire import converter
from .batch import BatchResult, BatchRunner, BatchStats

__all__ = ["main"]

PROG: Final = "reka-async"
_CHUNK_BYTES: Final = 256 * 1024
_MOCK_KEY: Final = "mock-key"

logger = logging.getLogger("reka_async")


# --------------------------------------------------------------------------- errors


class UsageError(Exception):
    """A usage or input problem: reported on one line, exit status 2."""


class InvalidInputLine(InvalidRequestError):
    """A line of the batch input that cannot become a request (bad JSON, bad fields...)."""


class DuplicateCustomId(InvalidRequestError):
    """A batch input line reuses a ``custom_id`` seen earlier in the same input."""


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``reka-async: error: ...``."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


# --------------------------------------------------------------------------- argument types


T = TypeVar("T", int, float)


def _bounded(kind: Callable[[str], T], *, strict: bool, what: str) -> Callable[[str], T]:
    """An argparse type: ``kind`` parsed from the text, above 0 (``strict``) or at least 0."""

    def parse(text: str) -> T:
        try:
            value: Any = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > 0 if strict else value >= 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value  # type: ignore[no-any-return]

    return parse


_positive_int = _bounded(int, strict=True, what="a positive integer")
_non_negative_int = _bounded(int, strict=False, what="an integer >= 0")
_positive_float = _bounded(float, strict=True, what="a positive number")
_non_negative_float = _bounded(float, strict=False, what="a number >= 0")


def _probability(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


# --------------------------------------------------------------------------- the parser

_MAIN_EPILOG: Final = """\
examples:
  reka-async chat "What is the capital of France?"
  reka-async chat --stream --system "Answer in one sentence." "Why is the sky blue?"
  reka-async batch prompts.jsonl -o results.jsonl --concurrency 32
  reka-async batch examples/prompts.jsonl -o results.jsonl --mock   # no key, no network
  reka-async models
  reka-async mock-server --port 8000

The API key is read from the REKA_API_KEY environment variable (preferred over --api-key,
which other users can see in the process list). --mock runs against a built-in mock server.

exit status: 0 success; 1 some requests failed (or an API error); 2 usage or input error.
"""

_CHAT_EPILOG: Final = """\
examples:
  reka-async chat "Summarise the plot of Hamlet in two sentences."
  reka-async chat --model reka-core --temperature 0 --max-tokens 200 "Explain TCP slow start."
  reka-async chat --stream --system "You are a terse assistant." "List three prime numbers."
  echo "Translate to German: good morning" | reka-async chat -
  reka-async chat --mock "hi"        # against the built-in mock server

exit status: 0 success; 1 the API returned an error; 2 usage error (e.g. no REKA_API_KEY).
"""

_BATCH_EPILOG: Final = """\
input (INPUT, or - for stdin), read lazily line by line:
  JSONL, one request per line, for example
    {"custom_id": "q1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64}
    {"custom_id": "q2", "prompt": "What is 2 + 2?", "temperature": 0}
  Other keys are chat parameters (max_tokens, temperature, top_p, stop, seed, model, ...).
  If the first non-blank line does not start with "{", the file is plain text: one prompt
  per line. Blank lines are skipped. A line without custom_id gets "line-N" (N = its 1-based
  line number), which keeps --resume stable.

  A line that cannot become a request (invalid JSON, not an object, no messages/prompt,
  invalid parameters) becomes an error line in OUTPUT naming its line number; the rest runs.
  A custom_id already used by an earlier line of INPUT: the later line becomes an error line
  of type DuplicateCustomId (it is not sent).

output (OUTPUT, JSONL, appended one line per input as each result arrives):
  {"custom_id": "q1", "line": 1, "ok": true,
   "response": {"id": ..., "model": ..., "text": ..., "finish_reason": ..., "responses": [...]},
   "usage": {"input_tokens": ..., "output_tokens": ...}, "latency_s": 0.41, "attempts": 1}
  {"custom_id": "q2", "line": 2, "ok": false,
   "error": {"type": "RateLimitError", "message": ..., "status": 429, "request_id": ...},
   "latency_s": 3.2, "attempts": 3}
  Lines are in completion order, not input order; join on custom_id.

memory: INPUT is streamed and each result is written as it arrives, so memory does not grow
  with the input, except for one set of custom_ids (for duplicates and --resume).

resume: an existing non-empty OUTPUT is never overwritten unless --overwrite is given.
  With --resume, a torn last line (from a crash) is cut off, every custom_id already in
  OUTPUT is skipped (failed ones too) and the rest is appended, so after any number of
  crashes and resumes OUTPUT holds each input exactly once.

examples:
  reka-async batch examples/prompts.jsonl -o results.jsonl --mock
  reka-async batch prompts.jsonl -o results.jsonl --concurrency 32 --rpm 600 --tpm 200000
  reka-async batch prompts.jsonl -o results.jsonl --resume          # after a crash or Ctrl-C
  cat questions.txt | reka-async batch - -o answers.jsonl --model reka-core --max-tokens 256

exit status: 0 every input succeeded; 1 some inputs failed (see their error lines, or the
  batch stopped early, e.g. out of credits); 2 usage or input error (nothing was run).
"""

_MODELS_EPILOG: Final = """\
examples:
  reka-async models
  reka-async models --mock

exit status: 0 success; 1 the API returned an error; 2 usage error (e.g. no REKA_API_KEY).
"""

_MOCK_EPILOG: Final = """\
The server prints "Mock Reka server listening on URL" and runs until Ctrl-C or SIGTERM.
Point a client at it with --base-url URL and any non-empty key. Other options of
'python -m reka_async.testing' are passed through: --chunk-latency-ms, --fault-kinds,
--api-key, --stream-chunks, --seed, --rpm-limit, --retry-after, --sse-done.

examples:
  reka-async mock-server --port 8000
  reka-async mock-server --port 0 --latency-ms 50 --fault-rate 0.05
  REKA_API_KEY=x reka-async --base-url http://127.0.0.1:8000/v1 chat "hi"
"""


def _connection_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
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
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log to stderr: -v for INFO (retries), -vv for DEBUG",
    )


def _build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="Command-line client for the Reka Chat API (chat, batch jobs, mock server).",
        epilog=_MAIN_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    chat = sub.add_parser(
        "chat",
        help="send one prompt and print the reply",
        description="Send one prompt and print the reply.",
        epilog=_CHAT_EPILOG,
        formatter_class=formatter,
    )
    chat.add_argument("prompt", help="the user message ('-' reads it from stdin)")
    chat.add_argument("--model", default="reka-flash", help="model id (default: %(default)s)")
    chat.add_argument("--system", metavar="TEXT", help="a system message sent before the prompt")
    chat.add_argument("--stream", action="store_true", help="print the reply as it is generated")
    chat.add_argument("--temperature", type=_non_negative_float, metavar="F")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N")
    chat.add_argument("--max-retries", type=_non_negative_int, default=2, metavar="N")
    chat.add_argument("--mock", action="store_true", help="use a built-in mock server")
    _connection_options(chat, top=False)

    batch = sub.add_parser(
        "batch",
        help="run a JSONL file of requests, writing one JSONL result per input",
        description="Run many chat requests from a file at bounded concurrency.",
        epilog=_BATCH_EPILOG,
        formatter_class=formatter,
    )
    batch.add_argument("input", metavar="INPUT", help="JSONL or plain-text file, or - for stdin")
    batch.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="JSONL results")
    batch.add_argument(
        "--concurrency",
        type=_positive_int,
        default=64,
        metavar="N",
        help="most requests in flight (default: %(default)s)",
    )
    batch.add_argument(
        "--rpm", type=_positive_float, metavar="N", help="requests-per-minute budget"
    )
    batch.add_argument(
        "--tpm", type=_positive_float, metavar="N", help="tokens-per-minute budget (estimated)"
    )
    batch.add_argument(
        "--model", default="reka-flash", help="model for lines naming none (default: %(default)s)"
    )
    batch.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="default max_tokens per request"
    )
    batch.add_argument(
        "--temperature", type=_non_negative_float, metavar="F", help="default temperature"
    )
    batch.add_argument(
        "--max-retries",
        type=_non_negative_int,
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
        "--overwrite",
        action="store_true",
        help="start OUTPUT afresh if it exists (its results are discarded)",
    )
    batch.add_argument("--mock", action="store_true", help="use a built-in mock server")
    batch.add_argument(
        "--mock-latency-ms",
        type=_non_negative_float,
        default=0.0,
        metavar="N",
        help="mock response latency (default: %(default)s)",
    )
    batch.add_argument(
        "--mock-fault-rate",
        type=_probability,
        default=0.0,
        metavar="F",
        help="probability of a random mock fault, 0-1 (default: %(default)s)",
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    _connection_options(batch, top=False)

    models = sub.add_parser(
        "models",
        help="list the model ids",
        description="List the models available to the key.",
        epilog=_MODELS_EPILOG,
        formatter_class=formatter,
    )
    models.add_argument("--mock", action="store_true", help="use a built-in mock server")
    _connection_options(models, top=False)

    mock = sub.add_parser(
        "mock-server",
        help="run the built-in mock Reka API server",
        description="Serve a mock Reka Chat API (deterministic replies, injectable faults).",
        epilog=_MOCK_EPILOG,
        formatter_class=formatter,
    )
    mock.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    mock.add_argument(
        "--port", type=int, default=8000, help="port, 0 for any free one (default: %(default)s)"
    )
    mock.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, help="delay before each response"
    )
    mock.add_argument(
        "--fault-rate", type=_probability, default=0.0, help="probability of a random fault"
    )
    return parser, {"chat": chat, "batch": batch, "models": models, "mock-server": mock}


# --------------------------------------------------------------------------- helpers


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def _say(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def _api_key(args: argparse.Namespace) -> str:
    """The key to use (a dummy one with ``--mock``); raises before anything is opened."""
    if args.mock:
        if args.base_url:
            raise UsageError("--mock and --base-url cannot be used together")
        return _MOCK_KEY
    key: str | None = args.api_key or os.environ.get("REKA_API_KEY")
    if not key:
        raise MissingAPIKeyError(
            "no API key: set the REKA_API_KEY environment variable "
            "(or run with --mock to use the built-in mock server)"
        )
    return key


@contextlib.asynccontextmanager
async def _client(
    args: argparse.Namespace,
    *,
    max_retries: int = 2,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    mock_latency_s: float = 0.0,
    mock_fault_rate: float = 0.0,
) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` for the command: against a fresh in-process mock with ``--mock``."""
    key = _api_key(args)
    if args.mock:
        from .testing import MockRekaServer  # only the mock path needs aiohttp.web

        async with (
            MockRekaServer(
                api_key=None,
                latency_s=mock_latency_s,
                fault_rate=mock_fault_rate,
                record_requests=False,
            ) as server,
            AsyncClient(
                key,
                server.base_url,
                max_retries=max_retries,
                max_connections=max_connections,
            ) as client,
        ):
            yield client
        return
    async with AsyncClient(
        key, args.base_url, max_retries=max_retries, max_connections=max_connections
    ) as client:
        yield client


# --------------------------------------------------------------------------- chat & models


def _cmd_chat(args: argparse.Namespace) -> int:
    _api_key(args)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return asyncio.run(_chat(args, prompt))


async def _chat(args: argparse.Namespace, prompt: str) -> int:
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    out = sys.stdout
    async with _client(args, max_retries=args.max_retries) as client:
        if args.stream:
            async with client.chat.create_stream(
                messages=messages, model=args.model, **params
            ) as stream:
                async for chunk in stream:
                    if chunk.delta:
                        out.write(chunk.delta)
                        out.flush()
            out.write("\n")
        else:
            response = await client.chat.create(messages=messages, model=args.model, **params)
            out.write(response.text + "\n")
        out.flush()
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    _api_key(args)
    return asyncio.run(_models(args))


async def _models(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        models = await client.models.list()
    for model in models:
        sys.stdout.write(model.id + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- batch: input


class _BadLine(dict[str, Any]):
    """An input line that cannot become a request; ``_CliRunner.prepare`` raises its error."""

    def __init__(self, custom_id: str, error: InvalidRequestError) -> None:
        super().__init__(custom_id=custom_id)
        self.error = error


class _ReaderStopped(Exception):
    pass


async def _read_lines(fd: int) -> AsyncGenerator[list[bytes], None]:
    """The lines read from file descriptor ``fd`` (without their ``\\n``), in small batches.

    A daemon thread does the blocking reads (``os.read``: whatever is available, so a slow
    pipe is not held back until a buffer fills, and no buffer lock is held that could trouble
    interpreter shutdown), handing batches over through a small queue: the event loop never
    blocks on input, memory stays bounded, and a reader stuck on an idle stdin cannot keep the
    process alive.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[bytes] | BaseException | None] = asyncio.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: list[bytes] | BaseException | None) -> None:
        if stop.is_set():
            raise _ReaderStopped
        coro = queue.put(item)
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop is gone
            coro.close()
            raise _ReaderStopped from None
        try:
            fut.result()
        except BaseException:  # cancelled at loop shutdown
            raise _ReaderStopped from None

    def reader() -> None:
        try:
            tail = b""
            while True:
                data = os.read(fd, _CHUNK_BYTES)
                if not data:
                    if tail:
                        put([tail])
                    put(None)
                    return
                lines = (tail + data).split(b"\n") if tail else data.split(b"\n")
                tail = lines.pop()
                if lines:
                    put(lines)
        except _ReaderStopped:
            return
        except BaseException as exc:  # hand any failure to the consumer; never lose it
            with contextlib.suppress(_ReaderStopped):
                put(exc)

    threading.Thread(target=reader, name="reka-async-input", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not queue.empty():  # let a reader blocked on a full queue finish its put
            queue.get_nowait()


class _Input:
    """Turns input lines into batch items, tracking line numbers, duplicates and resume skips.

    Items are numbered in the order the runner pulls them, which is the ``BatchResult.index``;
    ``line_of`` maps that index to the input line number until the result is written.
    """

    def __init__(
        self,
        *,
        done_ok: set[str],
        done_failed: set[str],
        done_dup_lines: set[int],
    ) -> None:
        self.done_ok = done_ok
        self.done_failed = done_failed
        self.done_dup_lines = done_dup_lines
        self.seen: set[str] = set()
        self.line_of: dict[int, int] = {}
        self.skipped = 0
        self.skipped_failed = 0
        self.sent = 0
        self.plain_text: bool | None = None

    async def items(self, fd: int) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the items to send, from the lines of file descriptor ``fd``."""
        lineno = 0
        async with contextlib.aclosing(_read_lines(fd)) as chunks:
            async for lines in chunks:
                for raw in lines:
                    lineno += 1
                    item = self._parse(raw, lineno)
                    if item is None:
                        continue
                    custom_id = str(item["custom_id"])
                    if custom_id in self.seen:
                        if lineno in self.done_dup_lines:
                            self.skipped += 1
                            self.skipped_failed += 1
                            continue
                        item = _BadLine(
                            custom_id,
                            DuplicateCustomId(
                                f"line {lineno}: duplicate custom_id {custom_id!r} (an earlier "
                                f"line of the input uses it); this line was not sent"
                            ),
                        )
                    else:
                        self.seen.add(custom_id)
                        if custom_id in self.done_ok or custom_id in self.done_failed:
                            self.skipped += 1
                            if custom_id in self.done_failed:
                                self.skipped_failed += 1
                            continue
                    self.line_of[self.sent] = lineno
                    self.sent += 1
                    yield item

    def _parse(self, raw: bytes, lineno: int) -> dict[str, Any] | None:
        """The item of one line, a ``_BadLine``, or ``None`` for a blank line."""
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        auto_id = f"line-{lineno}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not raw.strip():
                return None
            return _BadLine(auto_id, InvalidInputLine(f"line {lineno}: not valid UTF-8 ({exc})"))
        if not text.strip():
            return None
        if self.plain_text is None:
            self.plain_text = not text.lstrip().startswith("{")
        if self.plain_text:
            return {"custom_id": auto_id, "prompt": text}
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return _BadLine(auto_id, InvalidInputLine(f"line {lineno}: invalid JSON: {exc}"))
        if not isinstance(obj, dict):
            return _BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: expected a JSON object, got {type(obj).__name__}"
                ),
            )
        custom_id = obj.get("custom_id")
        if custom_id is None:
            obj["custom_id"] = auto_id
        elif isinstance(custom_id, bool) or not isinstance(custom_id, (str, int)):
            return _BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: custom_id must be a string, got {type(custom_id).__name__}"
                ),
            )
        elif custom_id == "":
            return _BadLine(auto_id, InvalidInputLine(f"line {lineno}: custom_id is empty"))
        else:
            obj["custom_id"] = str(custom_id)
        return obj


class _CliRunner(BatchRunner):
    """A ``BatchRunner`` whose input errors name the line they come from."""

    def __init__(self, client: AsyncClient, *, lines: dict[int, int], **options: Any) -> None:
        super().__init__(client, **options)
        self.lines = lines

    def prepare(self, index: int, item: Any) -> tuple[str, dict[str, Any]]:
        """Like ``BatchRunner.prepare``; errors become ``InvalidInputLine`` with the line."""
        if isinstance(item, _BadLine):
            raise item.error
        try:
            return super().prepare(index, item)
        except InvalidRequestError as exc:
            line = self.lines.get(index)
            raise InvalidInputLine(f"line {line}: {exc}") from exc


# --------------------------------------------------------------------------- batch: output


_TORN: Final = object()


def _scan_output(path: str) -> tuple[set[str], set[str], set[int], int]:
    """Read an existing OUTPUT for ``--resume``; cut off a torn last line.

    Returns:
        ``(ok custom_ids, failed custom_ids, line numbers of duplicate-error lines, records)``.
    """
    done_ok: set[str] = set()
    done_failed: set[str] = set()
    dup_lines: set[int] = set()
    records = bad = trailing_bad = foreign = 0
    with open(path, "r+b") as f:
        offset = good_end = 0  # good_end: the end of the last complete, valid record
        for raw in f:
            end = offset + len(raw)
            record: Any = _TORN
            if raw.endswith(b"\n") and raw.strip():
                with contextlib.suppress(ValueError):
                    record = json.loads(raw)
            if record is not _TORN:
                # A complete line: kept, and counted when it is one of our records.
                good_end = end
                trailing_bad = 0
                if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                    records += 1
                    custom_id = record["custom_id"]
                    (done_ok if record.get("ok") is True else done_failed).add(custom_id)
                    error = record.get("error")
                    line = record.get("line")
                    if (
                        isinstance(error, dict)
                        and error.get("type") == DuplicateCustomId.__name__
                        and isinstance(line, int)
                    ):
                        dup_lines.add(line)
                else:
                    foreign += 1
            elif raw.strip():
                bad += 1
                trailing_bad += 1
            elif not trailing_bad:
                good_end = end
            offset = end
        if trailing_bad:
            # A crash mid-write left a torn last line: cut the file back to the end of the
            # last complete record, so that the rerun appends cleanly and redoes that item.
            f.truncate(good_end)
            _say(f"resume: removed a torn last line from {path}")
    if bad - trailing_bad + foreign:
        _say(f"warning: ignored {bad - trailing_bad + foreign} unreadable line(s) in {path}")
    return done_ok, done_failed, dup_lines, records


def _record(result: BatchResult, line: int | None) -> dict[str, Any]:
    record: dict[str, Any] = {"custom_id": result.custom_id, "line": line, "ok": result.ok}
    response = result.response
    if response is not None:
        record["response"] = {
            "id": response.id,
            "model": response.model,
            "text": response.text,
            "finish_reason": response.finish_reason,
            "responses": converter.unstructure(response.responses),
        }
        record["usage"] = {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
        }
    else:
        error = result.error
        record["error"] = {
            "type": type(error).__name__,
            "message": str(error),
            "status": getattr(error, "status_code", None),
            "request_id": getattr(error, "request_id", None),
        }
    record["latency_s"] = round(result.latency_s, 4)
    record["attempts"] = result.attempts
    return record


class _Writer:
    """Appends one JSON line per result with a single ``write`` each, unbuffered."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]

    def close(self) -> None:
        self._file.close()


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


# --------------------------------------------------------------------------- batch: run


def _cmd_batch(args: argparse.Namespace) -> int:
    out_path: str = args.output
    if out_path == "-":
        raise UsageError("OUTPUT must be a file (it is appended to and read back by --resume)")
    from_stdin = args.input == "-"
    if not from_stdin:
        if not os.path.exists(args.input):
            raise UsageError(f"input file not found: {args.input}")
        if os.path.isdir(args.input):
            raise UsageError(f"INPUT is a directory: {args.input}")
        if os.path.exists(out_path) and os.path.samefile(args.input, out_path):
            raise UsageError("INPUT and OUTPUT are the same file")
    if os.path.isdir(out_path):
        raise UsageError(f"OUTPUT is a directory: {out_path}")
    _api_key(args)  # fail before creating OUTPUT

    done_ok: set[str] = set()
    done_failed: set[str] = set()
    dup_lines: set[int] = set()
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    if args.overwrite and os.path.exists(out_path):
        os.truncate(out_path, 0)
    if os.path.exists(out_path) and os.path.getsize(out_path) > 0:
        if not args.resume:
            raise UsageError(
                f"{out_path} already exists and is not empty; pass --resume to continue it, "
                f"--overwrite to start afresh, or choose another output path"
            )
        done_ok, done_failed, dup_lines, records = _scan_output(out_path)
        _say(f"resume: {records} result(s) already in {out_path} will be skipped")
    source = _Input(done_ok=done_ok, done_failed=done_failed, done_dup_lines=dup_lines)

    bar: Any = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        total = None
        if not from_stdin:
            total = max(_count_lines(args.input) - len(done_ok) - len(done_failed), 0)
        bar = tqdm(total=total, unit="req", file=sys.stderr, dynamic_ncols=True)

    fd = sys.stdin.fileno() if from_stdin else os.open(args.input, os.O_RDONLY)
    writer = _Writer(out_path)
    stats: list[BatchStats] = []
    try:
        asyncio.run(_run_batch(args, source, fd, writer, bar, stats))
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        if not from_stdin:
            os.close(fd)
        if stats:
            _summary(stats[0], source, out_path)
    return 1 if stats[0].failed or source.skipped_failed else 0


async def _run_batch(
    args: argparse.Namespace,
    source: _Input,
    fd: int,
    writer: _Writer,
    bar: Any,
    stats_out: list[BatchStats],
) -> None:
    def on_result(result: BatchResult, live: BatchStats) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"ok={live.ok} failed={live.failed}", refresh=False)

    params: dict[str, Any] = {}
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    async with _client(
        args,
        max_retries=args.max_retries,
        max_connections=max(args.concurrency, DEFAULT_MAX_CONNECTIONS),
        mock_latency_s=args.mock_latency_ms / 1000.0,
        mock_fault_rate=args.mock_fault_rate,
    ) as client:
        runner = _CliRunner(
            client,
            lines=source.line_of,
            concurrency=args.concurrency,
            model=args.model,
            rpm=args.rpm,
            tpm=args.tpm,
            on_result=on_result,
            **params,
        )
        async with contextlib.aclosing(source.items(fd)) as items:
            try:
                async with runner.stream(items) as results:
                    async for result in results:
                        writer.write(_record(result, source.line_of.pop(result.index, None)))
            finally:
                stats_out.append(runner.stats)


def _summary(stats: BatchStats, source: _Input, out_path: str) -> None:
    _say(stats.summary())
    if source.skipped:
        extra = f", {source.skipped_failed} of them failed" if source.skipped_failed else ""
        _say(f"skipped {source.skipped} input(s) already in the output{extra}")
    _say(f"results: {out_path}")


# --------------------------------------------------------------------------- entry point


def _mock_server(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from .testing import main as serve

    argv = [
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--latency-ms",
        repr(args.latency_ms),
        "--fault-rate",
        repr(args.fault_rate),
        *extra,
    ]
    try:
        return serve(argv)
    except SystemExit as exc:  # its own usage errors
        return exc.code if isinstance(exc.code, int) else 2


_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "chat": _cmd_chat,
    "batch": _cmd_batch,
    "models": _cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reka-async`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 some requests failed (or an API error), 2 usage or
        input error.
    """
    parser, commands = _build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "mock-server":
            commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args.verbose)
    if args.command == "mock-server":
        return _mock_server(args, extra)
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, MissingAPIKeyError, InvalidRequestError) as exc:
        _say(f"error: {exc}")
        return 2
    except BatchAbortedError as exc:
        _say(f"error: {exc}")
        _say("the results so far are in the output; rerun with --resume to continue")
        return 1
    except RekaError as exc:
        _say(f"error: {type(exc).__name__}: {exc}")
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (e.g. piped into head): exit quietly.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"error: {exc.strerror or exc}{where}")
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # a bug: still one line, with the traceback under -v
        logger.debug("unexpected error", exc_info=True)
        _say(f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)")
        return 1
