"""Input lines to batch items: parsing, line numbers, duplicate custom_ids, resume skips."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final

import attrs

from .._exceptions import InvalidRequestError
from ..batch import prepare_item
from ._errors import DuplicateCustomId, InputChanged, InvalidInputLine
from ._index import DigestTable, digest_key
from ._read import read_lines
from ._resume import (
    ANSWERED,
    FAILED_RETRYABLE,
    Entry,
    Resumed,
    id_key,
    request_digest,
    stored_request_digest,
)

__all__ = [
    "INPUT_FORMATS",
    "BadLine",
    "InputHasher",
    "JobInput",
    "LineHash",
    "input_format",
    "input_hasher",
    "line_preparer",
    "prepare_line",
    "raw_line_hash",
]

#: The input formats: JSONL (one request object a line) or text (one prompt a line).
INPUT_FORMATS: Final = ("jsonl", "text")
_EXTENSIONS: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".txt": "text"}


def input_format(path: str, given: str | None = None) -> str:
    """The format of the input ``path``: ``given`` if any, else from its extension
    (``.jsonl``/``.ndjson``/``.json``: JSONL, ``.txt``: text); standard input (``"-"``) is
    JSONL. Never guessed from the content.

    Raises:
        ValueError: ``given`` is not a format, or the extension says nothing.
    """
    if given is not None:
        if given not in INPUT_FORMATS:
            raise ValueError(f"input format must be 'jsonl' or 'text', got {given!r}")
        return given
    if path == "-":
        return "jsonl"
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    raise ValueError(
        f"cannot tell the format of {path} from its extension {ext or '(none)'!r}: name it "
        f".jsonl or .txt, or pass --format jsonl|text (input_format=)"
    )


def _openai_batch_line(obj: dict[str, Any], lineno: int, auto_id: str) -> dict[str, Any] | BadLine:
    """An OpenAI Batch API line (``custom_id``, ``method``, ``url``, ``body``) as an item."""
    custom_id = obj.get("custom_id")
    cid = str(custom_id) if isinstance(custom_id, (str, int)) and custom_id != "" else auto_id
    method, url, body = obj.get("method", "POST"), obj.get("url", ""), obj.get("body")
    if str(method).upper() != "POST" or not str(url).rstrip("/").endswith("/chat/completions"):
        return BadLine(
            cid,
            InvalidInputLine(
                f"line {lineno}: OpenAI Batch line for {method} {url}: only POST "
                f"/v1/chat/completions can be sent"
            ),
        )
    if not isinstance(body, dict):
        return BadLine(
            cid, InvalidInputLine(f"line {lineno}: OpenAI Batch 'body' must be an object")
        )
    item = {k: v for k, v in body.items() if k != "stream"}
    if "max_completion_tokens" in item:
        item.setdefault("max_tokens", item.pop("max_completion_tokens"))
        item.pop("max_completion_tokens", None)
    if custom_id is not None:
        item["custom_id"] = custom_id
    return item


_LINE_PREFIX: Final = "line:"


def raw_line_hash(raw: bytes) -> str:
    """The identity of an input line that never became a request (``"line:"`` + 32 hex)."""
    return _LINE_PREFIX + hashlib.sha256(raw.rstrip(b"\r")).hexdigest()[:32]


#: The BLAKE2b personalisation of input hashes. Its version goes up whenever the request
#: built from the same line and options changes (``prepare_line``, ``request_body``): older
#: input hashes then match no line, and a resume compares the requests themselves.
_INPUT_PERSON: Final = b"reka-input-v1"
_INPUT_HASH_BYTES: Final = 16


@attrs.frozen
class InputHasher:
    """The ``input_hash`` of an input line: BLAKE2b of the line's bytes, salted by the job's
    options (`input_hasher`).

    Equal input hashes mean the same bytes read with the same options, so the same request
    (prepare is a function of the two); a line whose bytes changed but whose request did not
    (whitespace, key order) differs here, and a resume then compares the requests. A resume
    compares 8 bytes of it: an edited line keeps them with probability ``2**-64``, as it
    would keep its request hash's 8 bytes.

    Attributes:
        salt: 16 bytes of BLAKE2b of the options.
    """

    salt: bytes

    def __call__(self, raw: bytes) -> str:
        """The ``input_hash`` of the line ``raw`` (``"b2:"`` and 32 hex digits)."""
        return "b2:" + self._hash(raw).hexdigest()

    def digest(self, raw: bytes) -> bytes:
        """The 8 bytes of its input hash a resume compares (``_resume.input_digest``)."""
        return self._hash(raw).digest()[:8]

    def _hash(self, raw: bytes) -> hashlib.blake2b:
        return hashlib.blake2b(
            raw, digest_size=_INPUT_HASH_BYTES, salt=self.salt, person=_INPUT_PERSON
        )


def input_hasher(
    *,
    model: str,
    params: Mapping[str, Any],
    system: str | None,
    input_format: str,
    base_url: str,
    api: str,
) -> InputHasher | None:
    """The `InputHasher` of a job's lines: every option that shapes a request from a line
    (the default model, the parameters, the system message, the input format, and the host
    and dialect ``request_hash`` names) goes into its salt.

    Returns:
        ``None`` when the parameters are not JSON (such a job stores no input hashes, and a
        resume compares requests).
    """
    options = {
        "model": model,
        "params": params,
        "system": system,
        "format": input_format,
        "host": (urllib.parse.urlsplit(base_url).hostname or "").lower(),
        "api": api,
    }
    try:
        text = json.dumps(options, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    salt = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return InputHasher(salt)


# The head of an input line as json.dumps writes it, or compact: its custom_id is a key to
# look up without parsing the line. Only a line whose input hash then matches its record's is
# skipped this way, so the guess is checked: a record's input hash is of the very bytes that
# produced it, so the same bytes have that record's custom_id.
_ID_HEAD: Final = re.compile(rb'\{\s*"custom_id"\s*:\s*"([^"\\]*)"')


class BadLine(dict[str, Any]):
    """An input line that cannot become a request; `prepare_line` raises its error."""

    def __init__(self, custom_id: str, error: InvalidRequestError) -> None:
        super().__init__(custom_id=custom_id)
        self.error = error


def prepare_line(
    item: Any,
    index: int,
    line: int | None,
    *,
    model: str,
    params: Mapping[str, Any],
    system: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """``prepare_item`` for an input line: its errors become ``InvalidInputLine`` with the line.

    Args:
        item: the batch item (a `BadLine` raises its stored error).
        index: the item's ``BatchResult.index``.
        line: its 1-based input line number; ``None`` leaves the error as it is.
        model: as in ``prepare_item``.
        params: as in ``prepare_item``.
        system: a system message put first, unless the messages start with their own.

    Raises:
        InvalidRequestError: the item cannot become a request.
    """
    if isinstance(item, BadLine):
        raise item.error
    try:
        custom_id, body = prepare_item(item, index, model=model, params=params)
    except InvalidRequestError as exc:
        if line is None:
            raise
        raise InvalidInputLine(f"line {line}: {exc}") from exc
    messages = body.get("messages")
    if system is not None and isinstance(messages, list):
        first = messages[0] if messages else None
        if not (isinstance(first, dict) and first.get("role") == "system"):
            body["messages"] = [{"role": "system", "content": system}, *messages]
    return custom_id, body


def line_preparer(
    line_of: Mapping[int, int],
    *,
    model: str,
    params: Mapping[str, Any],
    system: str | None = None,
) -> Callable[[int, Any], tuple[str, dict[str, Any]]]:
    """A ``BatchRunner(prepare=...)`` callable: `prepare_line` with the line from ``line_of``."""

    def prepare(index: int, item: Any) -> tuple[str, dict[str, Any]]:
        return prepare_line(
            item, index, line_of.get(index), model=model, params=params, system=system
        )

    return prepare


#: ``hash_line(item, lineno) -> str``: the identity of a line's request (`line_hasher`).
LineHash = Callable[[Any, int], str]


class JobInput:
    """Turns input lines into batch items, tracking line numbers, duplicates and resume skips.

    Items are numbered in the order the runner pulls them, which is the ``BatchResult.index``;
    ``line_of`` maps that index to the input line number until the result is written; with
    ``hash_line``, ``line_hash_of`` maps it to the hash of the raw line (the identity of an
    item that never becomes a request), and with ``hash_input``, ``input_hash_of`` to the
    line's input hash.

    On a resume an input whose custom_id the output already holds is skipped, unless:

    * its last record failed in a way that can change and ``retry_failed`` is set: sent again;
    * its request changed since (``hash_line`` differs from the stored ``request_hash``):
      sent again with ``rerun_changed`` (counted in ``rerun``), else ``InputChanged`` is
      raised (with ``dry=True``: every changed line is collected first). A record with an
      ``input_hash`` equal to ``hash_input`` of the line has the same request, and nothing
      is built to know it; one that differs is compared by its ``request_hash``.

    A duplicate ``custom_id`` never marks the original as done: duplicate lines are keyed by
    line number. The ids seen are kept in a `DigestTable`, ``seen`` (about 15 bytes an input
    when ``expected`` is the line count), but for those the output holds: a bit a slot of its
    table marks those.

    Args:
        resumed: what an existing output already holds (`scan_output`), or ``None``.
        retry_failed: send again the inputs whose failure can change.
        hash_line: computes a line's request identity; ``None`` skips change detection.
        rerun_changed: send changed inputs again instead of refusing.
        input_format: ``"jsonl"`` (one JSON object a line; OpenAI Batch API lines too) or
            ``"text"`` (one prompt a line); see `input_format`.
        expected: the input lines to expect (sizes the table of ids seen; 0: it grows).
        hash_input: the job's `InputHasher` (`input_hasher`), or ``None``.
    """

    def __init__(
        self,
        resumed: Resumed | None = None,
        *,
        retry_failed: bool = False,
        hash_line: LineHash | None = None,
        rerun_changed: bool = False,
        input_format: str = "jsonl",
        expected: int = 0,
        hash_input: InputHasher | None = None,
    ) -> None:
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format must be 'jsonl' or 'text', got {input_format!r}")
        self.resumed = resumed if resumed is not None else Resumed()
        self.retry_failed = retry_failed
        self.hash_line = hash_line
        self.hash_input = hash_input
        self.rerun_changed = rerun_changed
        self.seen = DigestTable(0, max(expected - len(self.resumed), 0))
        self.line_of: dict[int, int] = {}
        self.line_hash_of: dict[int, str] = {}
        self.input_hash_of: dict[int, str] = {}
        self.skipped = 0
        self.skipped_failed = 0
        self.retried = 0
        self.rerun = 0
        self.sent = 0
        self.lines = 0
        self.changed: list[tuple[int, str]] = []
        self.changed_count = 0
        self.plain_text = input_format == "text"
        #: After `check`: per input line, 0 skip, 1 send, 2 send as a duplicate's error.
        self.plan = bytearray()
        self._planned = False
        self._output_fd = -1  # the output, open while lines are read, for stored hashes

    def adopt(self, checker: JobInput) -> None:
        """Take the decisions of ``checker``'s `check` of the same input (made with the same
        options): this input's read then parses only the lines to send, and keeps no table
        of ids (the check found the duplicates). Lines beyond the checked ones (appended
        since) are left for a later resume."""
        self.plan = checker.plan
        self._planned = True
        self.seen = DigestTable(0)
        self.skipped, self.skipped_failed = checker.skipped, checker.skipped_failed
        self.retried, self.rerun = checker.retried, checker.rerun

    async def check(self, fd: int) -> None:
        """Read every line of ``fd`` without sending anything; raise ``InputChanged`` when
        inputs the output holds changed (and ``rerun_changed`` is off)."""
        async with contextlib.aclosing(self._lines(fd, dry=True)) as lines:
            async for _ in lines:
                pass
        if self.changed_count:
            raise self._changed_error()

    def _changed_error(self) -> InputChanged:
        first_line, first_id = self.changed[0]
        return InputChanged(
            f"{self.changed_count} input(s) changed since the output was written (first: line "
            f"{first_line}, custom_id {first_id!r}): their answers are for other requests. "
            f"Pass --rerun-changed (rerun_changed=True) to send them again, or write to a new "
            f"output",
            changed=list(self.changed),
            count=self.changed_count,
        )

    async def items(self, fd: int) -> AsyncGenerator[dict[str, Any], None]:
        """Yield the items to send, from the lines of file descriptor ``fd``."""
        async with contextlib.aclosing(self._lines(fd, dry=False)) as lines:
            async for item in lines:
                yield item

    def _duplicate(self, custom_id: str, lineno: int) -> BadLine:
        return BadLine(
            custom_id,
            DuplicateCustomId(
                f"line {lineno}: duplicate custom_id {custom_id!r} (an earlier "
                f"line of the input uses it); this line was not sent"
            ),
        )

    def _sending(self, raw: bytes, lineno: int) -> None:
        """Note what the record of the line about to be yielded needs."""
        self.line_of[self.sent] = lineno
        if self.hash_line is not None:
            self.line_hash_of[self.sent] = raw_line_hash(raw)
        if self.hash_input is not None:
            self.input_hash_of[self.sent] = self.hash_input(raw)
        self.sent += 1

    async def _lines(self, fd: int, *, dry: bool) -> AsyncGenerator[dict[str, Any], None]:
        try:
            async with contextlib.aclosing(self._read(fd, dry=dry)) as items:
                async for item in items:
                    yield item
        finally:
            if self._output_fd >= 0:
                os.close(self._output_fd)
                self._output_fd = -1

    async def _read(self, fd: int, *, dry: bool) -> AsyncGenerator[dict[str, Any], None]:
        done = self.resumed
        plan = self.plan
        # The inputs met that the output holds: one bit a slot of its table (the ids seen
        # that it does not hold go in `seen`). Slot numbers hold while the table does not
        # grow, and nothing adds to it while its input is read.
        table = done.table if len(done) and not self._planned else None
        met = bytearray(table.slots // 8 + 1) if table is not None else None
        grown = table.grown if table is not None else 0
        skip = self._skipper(met)
        lineno = 0
        async with contextlib.aclosing(read_lines(fd)) as chunks:
            async for lines in chunks:
                if table is not None and table.grown != grown:
                    raise RuntimeError("the output's table grew while its input was read")
                for raw in lines:
                    lineno += 1
                    if self._planned:
                        # The check decided: parse only the lines to send.
                        if lineno >= len(plan):
                            break
                        if not plan[lineno]:
                            continue
                        item = self.parse(raw, lineno)
                        if item is None:  # the line changed since the check
                            continue
                        if plan[lineno] == 2:
                            item = self._duplicate(str(item["custom_id"]), lineno)
                        self._sending(raw, lineno)
                        yield item
                        continue
                    if skip is not None and skip(raw, lineno):
                        continue
                    item = self.parse(raw, lineno)
                    if item is None:
                        continue
                    custom_id = str(item["custom_id"])
                    key = id_key(custom_id)
                    dup = False
                    slot = done.slot(key) if met is not None else -1
                    if met is not None and slot >= 0:
                        bit = 1 << (slot & 7)
                        new = not met[slot >> 3] & bit
                        met[slot >> 3] |= bit
                    else:
                        new = self.seen.add(key)
                    if not new:
                        if done.has_dup_line(lineno):
                            self.skipped += 1
                            self.skipped_failed += 1
                            continue
                        item = self._duplicate(custom_id, lineno)
                        dup = True
                    else:
                        entry = done.entry_at(slot) if slot >= 0 else None
                        if entry is not None and not self._send_again(
                            entry, item, raw, lineno, custom_id, dry=dry
                        ):
                            self.skipped += 1
                            if not entry.ok:
                                self.skipped_failed += 1
                            continue
                    if dry:
                        if len(plan) <= lineno:
                            plan.extend(bytes(lineno + 1 - len(plan) + len(plan) // 2))
                        plan[lineno] = 2 if dup else 1
                        continue
                    self._sending(raw, lineno)
                    yield item
        self.lines = lineno
        if dry and len(plan) <= lineno:
            plan.extend(bytes(lineno + 1 - len(plan)))  # a plan covers every line read

    def _skipper(self, met: bytearray | None) -> Callable[[bytes, int], bool] | None:
        """The fast skip of a resume (``None``: none applies): ``skip(raw, lineno)`` is true
        for a line skipped (counted, and marked in ``met``) as the general path would skip
        it, because the output's last record of its custom_id has its very input hash;
        false sends the line down the general path, with nothing counted or marked.

        What it buys: the check of a line the output answered in 3.7 µs of CPU instead of
        7.4 (rounds 3.7-3.9 against 7.2-7.6; the general path parses the line's JSON; both
        compare input hashes, where older records make it build and hash the request, 19.2
        µs): medians of five interleaved rounds on 200,000 lines, ``python -m
        benchmarks.jobscale --fast-paths 200000 --pairs 5``, load average 3.
        ``tests/jobs/test_resume_fast_paths.py`` pins it to the general path.
        """
        hasher = self.hash_input
        if hasher is None or self.hash_line is None or met is None:
            return None
        if not self.resumed.input_hashed:
            return None  # an older output: no line would be skipped by it
        slot_of = self.resumed.slot
        same = self.resumed.same_input
        input_digest = hasher.digest
        match = _ID_HEAD.match
        retry_failed = self.retry_failed
        plain_text = self.plain_text

        def skip(raw: bytes, lineno: int) -> bool:
            if plain_text:
                custom_id = b"line-%d" % lineno
            else:
                head = match(raw)
                if head is None:
                    return False
                custom_id = head.group(1)
            slot = slot_of(digest_key(custom_id, b"custom_id"))
            if slot < 0:
                return False
            held = same(slot, input_digest(raw))
            bit = 1 << (slot & 7)
            if not held or (held == FAILED_RETRYABLE and retry_failed) or met[slot >> 3] & bit:
                return False  # not held as this line, sent again, or a duplicate line
            met[slot >> 3] |= bit
            self.skipped += 1
            if held != ANSWERED:
                self.skipped_failed += 1
            return True

        return skip

    def _changed(self, entry: Entry, item: Any, raw: bytes, lineno: int) -> bool:
        """Whether the request of an input the output holds changed (``False`` when its
        record holds no hash to compare)."""
        assert self.hash_line is not None
        stored = entry.request_digest
        if entry.input_digest is not None:
            hasher = self.hash_input
            if hasher is not None and hasher.digest(raw) == entry.input_digest:
                return False  # the same bytes, read with the same options
            stored = self._stored_request_digest(entry.offset)
        if stored is None:
            return False
        digest = self.hash_line(item, lineno)
        if digest.startswith(_LINE_PREFIX):
            digest = raw_line_hash(raw)
        return request_digest(digest) != stored

    def _stored_request_digest(self, offset: int) -> bytes | None:
        """The request digest of the output's record at ``offset``."""
        if self._output_fd < 0:
            if not self.resumed.path:
                return None
            self._output_fd = os.open(self.resumed.path, os.O_RDONLY)
        return stored_request_digest(self._output_fd, offset)

    def _send_again(
        self, entry: Entry, item: Any, raw: bytes, lineno: int, custom_id: str, *, dry: bool
    ) -> bool:
        """Whether an input the output already holds must be sent again."""
        if self.hash_line is not None and self._changed(entry, item, raw, lineno):
            if self.rerun_changed:
                self.rerun += 1
                return True
            self.changed_count += 1
            if len(self.changed) < 20:
                self.changed.append((lineno, custom_id))
            if not dry:
                raise self._changed_error()
            return False
        if not entry.ok and entry.retryable and self.retry_failed:
            self.retried += 1
            return True
        return False

    def parse(self, raw: bytes, lineno: int) -> dict[str, Any] | None:
        """The item of one line, a `BadLine`, or ``None`` for a blank line."""
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
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: not valid UTF-8 ({exc})"))
        if not text.strip():
            return None
        if self.plain_text:
            return {"custom_id": auto_id, "prompt": text}
        try:
            obj: Any = json.loads(text)
        except ValueError as exc:
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: invalid JSON: {exc}"))
        if not isinstance(obj, dict):
            return BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: expected a JSON object, got {type(obj).__name__}"
                ),
            )
        if "body" in obj and ("url" in obj or "method" in obj):
            converted = _openai_batch_line(obj, lineno, auto_id)
            if isinstance(converted, BadLine):
                return converted
            obj = converted
        custom_id = obj.get("custom_id")
        if custom_id is None:
            obj["custom_id"] = auto_id
        elif isinstance(custom_id, bool) or not isinstance(custom_id, (str, int)):
            return BadLine(
                auto_id,
                InvalidInputLine(
                    f"line {lineno}: custom_id must be a string, got {type(custom_id).__name__}"
                ),
            )
        elif custom_id == "":
            return BadLine(auto_id, InvalidInputLine(f"line {lineno}: custom_id is empty"))
        else:
            obj["custom_id"] = str(custom_id)
        item: dict[str, Any] = obj
        return item
