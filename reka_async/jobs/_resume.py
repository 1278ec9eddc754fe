"""Resuming a job: what an existing output already holds, and compacting it at the end.

The output is append-only while a job runs; a later record of a ``custom_id`` supersedes an
earlier one (a failure retried with ``retry_failed``, an input re-run after it changed). So a
file cut off at any point, even mid-line, still says exactly what is done: the last complete
record of each id. At the end of a run that superseded records, the output is compacted to one
record per input: rewritten beside itself, flushed to disk, and renamed over it (atomic on
POSIX), so a crash leaves either the old file or the new one, both complete for ``--resume``.

What a resume keeps per input is one slot of a `DigestTable` (``_index``): the id's 96-bit
key, 8 bytes of a digest and the offset of its last record (about 33 bytes an input); the job's
totals are running sums, and a superseded record's share is taken back by reading it again at
its offset (superseded records are few: compaction removes them). The digest is the record's
``input_hash`` (the input line's bytes and the job's options: `input_digest`) when it has one,
so that the check of a resume compares it with a hash of the line as read, without parsing the
line or building its request; else its ``request_hash`` (records written before input
hashes), which the check compares with the request built again (records of ``run_ray_job``
hold neither, and are not checked). A record with an ``input_hash`` whose line differs is
read again at its offset for its ``request_hash`` (`stored_request_digest`): only a changed
request refuses the resume.

A record is read from its head (``custom_id``, ``line``, ``ok``) and its tail (usage, cost,
the hashes), where `record` puts them, without decoding the answer between; any other line is
decoded whole.

Which failures ``retry_failed`` sends again (``retryable_failure``): those that can change on
another try: connection errors and timeouts, 5xx, 408/409, 429s (rate limit and credits),
401/403 (a key fixed since), an unreadable response. Input errors are kept: an invalid line,
a duplicate ``custom_id``, 400, 404 (unknown model), 405, 413 and 422.
"""

from __future__ import annotations

import binascii
import contextlib
import copy
import hashlib
import json
import math
import os
import re
from typing import IO, Any, Final, NamedTuple

import attrs

from .._files import real_path, temp_beside
from ._errors import DuplicateCustomId, JobIOError
from ._index import DigestTable, digest_key
from ._spend import record_spend

__all__ = [
    "ANSWERED",
    "FAILED",
    "FAILED_RETRYABLE",
    "NOT_HELD",
    "Entry",
    "Resumed",
    "compact_output",
    "count_lines",
    "dup_line_key",
    "id_key",
    "read_record",
    "record_line_at",
    "input_digest",
    "request_digest",
    "retryable_failure",
    "scan_output",
    "start_output",
    "stored_request_digest",
]

_INPUT_ERROR_TYPES: Final = frozenset(
    (
        "InvalidRequestError",
        "InvalidInputLine",
        "DuplicateCustomId",
        "BadRequestError",
        "NotFoundError",
        "MethodNotAllowedError",
        "UnprocessableEntityError",
    )
)
_INPUT_ERROR_STATUSES: Final = frozenset((400, 404, 405, 413, 422))

# A slot's value: 8 bytes of a digest (the input hash's when the record has one, else the
# request hash's), then 6 bytes holding the offset of the last record (shifted by 4) and four
# flags.
_DIGEST_BYTES: Final = 8
_VALUE_BYTES: Final = _DIGEST_BYTES + 6
_OK: Final = 1
_RETRYABLE: Final = 2
_HAS_HASH: Final = 4  # the digest is the request hash's
_INPUT: Final = 8  # the digest is the input hash's
_SHIFT: Final = 4
_MAX_OFFSET: Final = 1 << 44  # 16 TiB of output
_INPUT_HASH: Final = re.compile(r"b2:([0-9a-f]{16})[0-9a-f]{16}")
_NO_DIGEST: Final = bytes(_DIGEST_BYTES)
_DUP: Final = DuplicateCustomId.__name__


#: What `Resumed.same_input` says of an input line: its custom_id's last record is not of
#: these bytes (or there is none), or it is, and answered, failed for good, or failed in a
#: way another try can change.
NOT_HELD: Final = 0
ANSWERED: Final = 1
FAILED: Final = 2
FAILED_RETRYABLE: Final = 3


def retryable_failure(error: Any) -> bool:
    """Whether a failed record's ``error`` can change on another try (module docstring)."""
    if not isinstance(error, dict):
        return True
    if error.get("type") in _INPUT_ERROR_TYPES:
        return False
    return error.get("status") not in _INPUT_ERROR_STATUSES


def id_key(custom_id: str) -> bytes:
    """The table key of a ``custom_id``."""
    return digest_key(custom_id.encode("utf-8", "surrogatepass"), b"custom_id")


def dup_line_key(line: int) -> bytes:
    """The table key of a duplicate's error line (keyed by its line, never by its id)."""
    return digest_key(str(line).encode(), b"dup_line")


def request_digest(request_hash: str) -> bytes:
    """The 8 bytes of a request hash a resume compares: an edited input keeps the digest of
    its old request with probability ``2**-64``."""
    return hashlib.blake2b(request_hash.encode(), digest_size=_DIGEST_BYTES).digest()


def input_digest(input_hash: str) -> bytes | None:
    """The 8 bytes of an ``input_hash`` (``"b2:"`` and 32 lowercase hex digits) a resume
    compares: its first 8 bytes (``None``: not an input hash)."""
    found = _INPUT_HASH.fullmatch(input_hash)
    return None if found is None else bytes.fromhex(found.group(1))


@attrs.frozen
class Entry:
    """The last record of one ``custom_id`` in the output, as a resume needs it.

    Attributes:
        ok: it has a response.
        retryable: it failed in a way another try can change (``retryable_failure``).
        request_digest: `request_digest` of the hash of the request it answered, for a record
            without an ``input_hash`` (``None``: it has one, or it holds no hash at all).
        offset: where the record starts in the output.
        input_digest: `input_digest` of its ``input_hash`` (``None``: it has none); its
            ``request_hash`` is then read at ``offset`` (`stored_request_digest`).
    """

    ok: bool
    retryable: bool
    request_digest: bytes | None
    offset: int = 0
    input_digest: bytes | None = None


class _Record(NamedTuple):
    """What a scan reads of one record."""

    key: bytes
    line: Any
    ok: bool
    retryable: bool
    error_type: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cached: bool
    request_hash: str | None
    spend: float  # what the job's budget counts for it (`_spend.record_spend`)
    input_digest: bytes | None  # `input_digest` of its input_hash


# The head and tail `record` writes for an answer without metadata; anything else (an error,
# metadata, escapes in the custom_id, a foreign writer) is decoded whole. A quote inside a
# JSON string is always escaped, so these unescaped key sequences only occur as keys; the tail
# matched to the end of the line is the top level's.
_HEAD: Final = re.compile(rb'\{"custom_id": "([^"\\]*)", "line": (\d+|null), "ok": true, ')
_TAIL_START: Final = b', "usage": {"input_tokens": '
# Each part ends where the next part's first byte cannot stand, so the match never gives
# back. (Possessive quantifiers, which say so to the engine and took the tail's match from
# 0.96 to 0.75 µs, need Python 3.11: 3.10's ``re`` refuses them.)
_TAIL: Final = re.compile(
    rb', "usage": \{"input_tokens": (\d+), "output_tokens": (\d+)\}, '
    rb'"latency_s": [-+.eE0-9]+, "attempts": \d+(, "cached": true)?'
    rb'(?:, "cost_usd": ([-+.eE0-9]+|null))?(?:, "charged_usd": ([-+.eE0-9]+))?'
    rb'(?:, "request_hash": "([^"\\]*)")?'
    rb'(?:, "input_hash": "b2:([0-9a-f]{16})[0-9a-f]{16}")?\}\r?\n'
)


# The whole line of the commonest record, an answer without metadata: what `_read` takes from
# it by its head and tail, in one match (``.+`` finds the tail from the line's end, so it
# stands where `_read`'s ``rfind`` finds it: a later tail start cannot lie inside a tail).
_RECORD: Final = re.compile(_HEAD.pattern + rb".+" + _TAIL.pattern)


def _read(raw: bytes) -> _Record | None:
    """The record of a complete line (ending in ``\\n``), or ``None`` if it is none of ours."""
    head = _HEAD.match(raw)
    if head is not None:
        start = raw.rfind(_TAIL_START)
        tail = _TAIL.fullmatch(raw, start) if start > head.end() else None
        if tail is not None:
            custom_id, line = head.groups()
            input_tokens, output_tokens, cached, cost, charged, digest, ihash = tail.groups()
            cost_usd = None if cost is None or cost == b"null" else float(cost)
            return _Record(
                digest_key(custom_id, b"custom_id"),
                None if line == b"null" else int(line),
                True,
                False,
                None,
                int(input_tokens),
                int(output_tokens),
                cost_usd,
                cached is not None,
                None if digest is None else digest.decode(),
                _spend(None if charged is None else float(charged), cost_usd),
                None if ihash is None else binascii.unhexlify(ihash),
            )
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        return None
    return _decoded(record)


def _decoded(record: dict[str, Any]) -> _Record:
    ok = record.get("ok") is True
    error = record.get("error")
    error = error if isinstance(error, dict) else None
    line = record.get("line")
    if error is not None and error.get("type") == _DUP:
        key = dup_line_key(line if isinstance(line, int) else -1)
    else:
        key = id_key(record["custom_id"])
    usage = record.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    cost = record.get("cost_usd")
    digest = record.get("request_hash")
    ihash = record.get("input_hash")
    return _Record(
        key,
        line,
        ok,
        not ok and retryable_failure(record.get("error")),
        str(error.get("type")) if error is not None and not ok else None,
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
        record.get("cached") is True,
        digest if isinstance(digest, str) else None,
        record_spend(record),
        input_digest(ihash) if isinstance(ihash, str) else None,
    )


def _spend(charged: float | None, cost: float | None) -> float:
    """`record_spend` of a record read by its head and tail: ``charged_usd`` when it has one
    (0 when not positive), else a positive ``cost_usd``, else 0."""
    value = charged if charged is not None else cost
    return value if value is not None and math.isfinite(value) and value > 0 else 0.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _too_large() -> JobIOError:
    return JobIOError(
        f"the output is larger than {_MAX_OFFSET} bytes: split the job", path="", written=0
    )


def _pack(rec: _Record, offset: int) -> bytes:
    if offset >= _MAX_OFFSET:
        raise _too_large()
    flags = (_OK if rec.ok else 0) | (_RETRYABLE if rec.retryable else 0)
    digest = rec.input_digest
    if digest is not None:
        flags |= _INPUT
    elif rec.request_hash is not None:
        flags |= _HAS_HASH
        digest = request_digest(rec.request_hash)
    else:
        digest = _NO_DIGEST
    return digest + ((offset << _SHIFT) | flags).to_bytes(6, "little")


def _offset(value: bytes) -> int:
    return int.from_bytes(value[_DIGEST_BYTES:], "little") >> _SHIFT


@attrs.define(kw_only=True)
class Resumed:
    """What an existing output holds, as `scan_output` found it: the last record of each
    input (in a `DigestTable`) and the job's totals.

    Attributes:
        records: result lines read.
        superseded: records a later record of the same custom_id (or line) replaces.
        torn_removed: a torn last line (from a crash) was cut off the file.
        unreadable: other lines that are not result records (ignored).
        end: the offset the scan read up to (the file's end).
        spent_usd: the cost of every record read, superseded ones included (what the job
            has paid for, as a per-job budget counts it).
        table: the last record of each input (``None``: a scan that only counted records,
            `scan_output` with ``keyed=False``).
        path: the output scanned (where `stored_request_digest` reads an entry's record).
        input_hashed: records read that hold an ``input_hash`` (0: an output written before
            records held it, where a resume has nothing to skip by it).
    """

    records: int = 0
    superseded: int = 0
    torn_removed: bool = False
    unreadable: int = 0
    end: int = 0
    spent_usd: float = 0.0
    table: DigestTable | None = attrs.field(factory=lambda: DigestTable(_VALUE_BYTES), repr=False)
    path: str = ""
    input_hashed: int = 0
    _ok: int = attrs.field(default=0, init=False)
    _failed: int = attrs.field(default=0, init=False)
    _errors: dict[str, int] = attrs.field(factory=dict, init=False)
    _input_tokens: int = attrs.field(default=0, init=False)
    _output_tokens: int = attrs.field(default=0, init=False)
    _cost_known: float = attrs.field(default=0.0, init=False)
    _unpriced: int = attrs.field(default=0, init=False)
    _cached: int = attrs.field(default=0, init=False)

    def __len__(self) -> int:
        """The inputs (and duplicate lines) the output holds a record of."""
        return self._ok + self._failed

    def fork(self) -> Resumed:
        """A copy with its own counts, sharing the table (which a later scan ``after`` the
        copy updates: the last record of each input is then the copy's)."""
        twin = copy.copy(self)
        twin._errors = dict(self._errors)
        return twin

    def get(self, custom_id: str) -> Entry | None:
        """The last record of ``custom_id``, or ``None``."""
        return self.entry(id_key(custom_id))

    def slot(self, key: bytes) -> int:
        """The table's slot number of the input keyed ``key`` (-1: the output holds none):
        for `entry_at` and `same_input`, and a reader's own bitmap of the inputs it met."""
        return self.table.slot(key) if self.table is not None else -1

    def same_input(self, slot: int, digest: bytes) -> int:
        """Whether the last record in ``slot`` (from `slot`) has the input digest ``digest``
        (``_resume.input_digest``): `NOT_HELD`, or `ANSWERED`, `FAILED` or
        `FAILED_RETRYABLE` (what a resume's fast skip needs, without an `Entry`)."""
        assert self.table is not None
        value = self.table.value_at(slot)
        flags = value[_DIGEST_BYTES]
        if not flags & _INPUT or not value.startswith(digest):
            return NOT_HELD
        if flags & _OK:
            return ANSWERED
        return FAILED_RETRYABLE if flags & _RETRYABLE else FAILED

    def has_dup_line(self, line: int) -> bool:
        """Whether the output holds the ``DuplicateCustomId`` error line of input ``line``."""
        return self.entry(dup_line_key(line)) is not None

    def entry(self, key: bytes) -> Entry | None:
        """The last record of the input whose table key (`id_key`) is ``key``, or ``None``."""
        slot = self.slot(key)
        return self.entry_at(slot) if slot >= 0 else None

    def entry_at(self, slot: int) -> Entry:
        """The last record in ``slot`` (from `slot`)."""
        assert self.table is not None
        value = self.table.value_at(slot)
        bits = int.from_bytes(value[_DIGEST_BYTES:], "little")
        return Entry(
            ok=bool(bits & _OK),
            retryable=bool(bits & _RETRYABLE),
            request_digest=value[:_DIGEST_BYTES] if bits & _HAS_HASH else None,
            offset=bits >> _SHIFT,
            input_digest=value[:_DIGEST_BYTES] if bits & _INPUT else None,
        )

    @property
    def ok_count(self) -> int:
        """Inputs whose last record is a response."""
        return self._ok

    @property
    def failed_count(self) -> int:
        """Inputs whose last record is an error, duplicate lines included."""
        return self._failed

    def _count(self, rec: _Record, sign: int) -> None:
        if rec.ok:
            self._ok += sign
            if rec.cached:
                self._cached += sign
            else:
                self._input_tokens += sign * rec.input_tokens
                self._output_tokens += sign * rec.output_tokens
                if rec.cost_usd is None:
                    self._unpriced += sign
                else:
                    self._cost_known += sign * rec.cost_usd
        else:
            self._failed += sign
            name = rec.error_type or "unknown"
            self._errors[name] = self._errors.get(name, 0) + sign
            if not self._errors[name]:
                del self._errors[name]

    def totals(self) -> dict[str, Any]:
        """The whole job as its output says, across every run: ``ok``, ``failed``,
        ``errors`` (by type), ``input_tokens``, ``output_tokens``, ``cost_usd`` (``None``
        when a response's cost is unknown), ``cached``, ``spent_usd`` (every record's cost,
        superseded ones included)."""
        known = round(self._cost_known, 6) + 0.0  # no -0.0 after a record is taken back
        return {
            "ok": self._ok,
            "failed": self._failed,
            "errors": dict(sorted(self._errors.items(), key=lambda kv: -kv[1])),
            "input_tokens": self._input_tokens,
            "output_tokens": self._output_tokens,
            "cost_usd": None if self._unpriced else known,
            "cost_usd_known": known,
            "unpriced": self._unpriced,
            "cached": self._cached,
            "spent_usd": round(self.spent_usd, 6),
        }


def _count_lines(f: IO[bytes], start: int) -> int:
    f.seek(start)
    lines = 0
    while chunk := f.read(1 << 20):
        lines += chunk.count(b"\n")
    f.seek(start)
    return lines


def _reread(fd: int, offset: int) -> _Record | None:
    """The record at ``offset`` (a superseded one, read again to take its share back);
    ``pread`` leaves the scan's position alone."""
    raw = b""
    while True:
        chunk = os.pread(fd, 65536, offset + len(raw))
        end = chunk.find(b"\n")
        if end >= 0 or not chunk:
            raw += chunk[: end + 1] if end >= 0 else chunk
            break
        raw += chunk
    return _read(raw) if raw.endswith(b"\n") else None


def _scan(f: IO[bytes], resumed: Resumed, *, fast: bool = True) -> int:
    """Read records from ``resumed.end`` into ``resumed``; returns the offset to cut a torn
    tail at (``-1``: none).

    With ``fast``, a line `_RECORD` matches (nearly every line a run against a server
    writes) is taken in place, without a `_Record`: the key, the slot's value and the sums
    straight from the match. What it buys: 5.9 µs of CPU a record instead of 7.5 (medians of
    five interleaved rounds on 200,000 records, ``python -m benchmarks.jobscale --fast-paths
    200000 --pairs 5``, rounds 5.8-6.1 against 6.8-7.5, load average 3);
    ``tests/jobs/test_resume_fast_paths.py`` pins it to the general path (``fast=False``).
    """
    table = resumed.table
    put = table.put if table is not None else None
    fd = f.fileno()
    match = _RECORD.fullmatch if fast else None
    offset = good_end = resumed.end
    f.seek(offset)
    trailing_bad = bad = foreign = 0
    records = ok = cached = input_tokens = output_tokens = unpriced = hashed = 0
    known = spent = 0.0
    for raw in f:
        end = offset + len(raw)
        whole = match(raw) if match is not None else None
        if whole is not None:
            good_end = end
            trailing_bad = 0
            cid, _, itok, otok, hit, cost, charged, rhash, ihash = whole.groups()
            if put is not None:
                if ihash is not None:
                    flags = _OK | _INPUT
                    digest = binascii.unhexlify(ihash)
                elif rhash is not None:
                    flags = _OK | _HAS_HASH
                    digest = hashlib.blake2b(rhash, digest_size=_DIGEST_BYTES).digest()
                else:
                    flags = _OK
                    digest = _NO_DIGEST
                if offset >= _MAX_OFFSET:
                    raise _too_large()
                old = put(
                    digest_key(cid, b"custom_id"),
                    digest + ((offset << _SHIFT) | flags).to_bytes(6, "little"),
                )
                if old is not None:
                    resumed.superseded += 1
                    gone = _reread(fd, _offset(old))
                    if gone is not None:
                        resumed._count(gone, -1)
            records += 1
            ok += 1
            hashed += ihash is not None
            price = None if cost is None or cost == b"null" else float(cost)
            if hit is not None:
                cached += 1
            else:
                input_tokens += int(itok)
                output_tokens += int(otok)
                if price is None:
                    unpriced += 1
                else:
                    known += price
            spent += _spend(None if charged is None else float(charged), price)
            offset = end
            continue
        rec = _read(raw) if raw.endswith(b"\n") else None
        if rec is None and raw.endswith(b"\n") and raw.strip() and _is_json(raw):
            foreign += 1  # valid JSON, not one of our records: kept, ignored
            good_end = end
            trailing_bad = 0
            offset = end
            continue
        if rec is not None:
            good_end = end
            trailing_bad = 0
            resumed.records += 1
            resumed.spent_usd += rec.spend  # superseded ones too: they were paid
            resumed.input_hashed += rec.input_digest is not None
            old = put(rec.key, _pack(rec, offset)) if put is not None else None
            if old is not None:
                resumed.superseded += 1
                gone = _reread(fd, _offset(old))
                if gone is not None:
                    resumed._count(gone, -1)
            resumed._count(rec, 1)
        elif raw.strip():
            bad += 1
            trailing_bad += 1
        elif not trailing_bad:
            good_end = end
        offset = end
    resumed.records += records
    resumed.input_hashed += hashed
    resumed.spent_usd += spent
    resumed._ok += ok
    resumed._cached += cached
    resumed._input_tokens += input_tokens
    resumed._output_tokens += output_tokens
    resumed._unpriced += unpriced
    resumed._cost_known += known
    resumed.unreadable += bad - trailing_bad + foreign
    resumed.end = good_end if trailing_bad else offset
    return good_end if trailing_bad else -1


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _new(f: IO[bytes], *, keyed: bool = True) -> Resumed:
    if not keyed:
        return Resumed(table=None)
    return Resumed(table=DigestTable(_VALUE_BYTES, expected=_count_lines(f, 0)))


def scan_output(path: str, *, after: Resumed | None = None, keyed: bool = True) -> Resumed:
    """Read an existing output for a resume; cut off a torn last line.

    Args:
        path: the output.
        after: a scan of the start of this same file (nothing but appends since): the
            records from its ``end`` on are added to it, and it is returned.
        keyed: ``False`` only counts: for an output whose records are all of different
            inputs (a first run's), the totals without the table (``get`` finds nothing).
    """
    with open(path, "r+b") as f:
        resumed = after if after is not None else _new(f, keyed=keyed)
        resumed.path = path
        cut = _scan(f, resumed)
        if cut >= 0:
            # A crash mid-write left a torn last line: cut the file back to the end of the
            # last complete record, so that the rerun appends cleanly and redoes that item.
            f.truncate(cut)
            resumed.torn_removed = True
    return resumed


def start_output(path: str, *, resume: bool, overwrite: bool) -> Resumed | None:
    """Make ``path`` ready to append to: emptied with ``overwrite``, scanned with ``resume``.

    Returns:
        What the output already holds (`scan_output`), or ``None`` when it starts empty.

    Raises:
        FileExistsError: the output is not empty and neither ``resume`` nor ``overwrite``
            was given (the caller words the message).
    """
    if overwrite and os.path.exists(path):
        os.truncate(path, 0)
    if not (os.path.exists(path) and os.path.getsize(path) > 0):
        return None
    if not resume:
        raise FileExistsError(path)
    return scan_output(path)


def read_record(raw: bytes) -> tuple[bytes, Any] | None:
    """``(key, line)`` of a complete record line (its table key, as `id_key` or
    `dup_line_key` gives it, and its ``line`` field), or ``None`` for any other line."""
    rec = _read(raw) if raw.endswith(b"\n") else None
    return None if rec is None else (rec.key, rec.line)


def stored_request_digest(fd: int, offset: int) -> bytes | None:
    """`request_digest` of the ``request_hash`` of the record at ``offset`` of the file ``fd``
    (``None``: it has none)."""
    rec = _reread(fd, offset)
    return None if rec is None or rec.request_hash is None else request_digest(rec.request_hash)


def record_line_at(fd: int, offset: int) -> Any:
    """The ``line`` field of the record at ``offset`` of the file ``fd`` (``None``: none)."""
    rec = _reread(fd, offset)
    return None if rec is None else rec.line


def count_lines(f: IO[bytes]) -> int:
    """The ``\n`` in ``f`` (read through once, in 1 MiB chunks; left at the start)."""
    return _count_lines(f, 0)


def compact_output(path: str) -> int:
    """Rewrite ``path`` with only the last record of each custom_id (and of each duplicate
    line), atomically; returns the records dropped (0: the file was left untouched).

    Other lines (foreign or unreadable) are kept where they are. The caller holds the lock.

    Raises:
        JobIOError: the rewrite failed; the original file is intact.
    """
    # Beside the real file (a linked output is rewritten through its link), under a name
    # nobody can predict and plant a link at.
    target = real_path(path)
    temp = ""
    dropped = kept = 0
    try:
        with open(path, "rb") as f:
            resumed = _new(f)
            _scan(f, resumed)
        table = resumed.table
        assert table is not None
        fd, temp = temp_beside(target, "compact")
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            offset = 0
            for raw in src:
                rec = _read(raw) if raw.endswith(b"\n") else None
                value = table.get(rec.key) if rec is not None else None
                if rec is None or (value is not None and _offset(value) == offset):
                    dst.write(raw)
                    kept += rec is not None
                else:
                    dropped += 1
                offset += len(raw)
            if not dropped:
                return 0
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temp, target)
        _fsync_dir(target)
    except OSError as exc:
        raise JobIOError(
            f"could not compact {path}: {exc.strerror or exc}; it is still complete "
            f"(later records win), and --resume reads it as it is",
            path=path,
            written=kept,
        ) from exc
    finally:
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return dropped


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
