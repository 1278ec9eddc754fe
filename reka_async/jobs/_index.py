"""Compact per-input tables for a job: fixed-size slots keyed by a 96-bit digest, in bytearrays.

A job keeps something for every input (the ``custom_id`` values seen, to find duplicates; on a
resume, what the output already holds). As Python objects that is about 0.4 KB an input, 4 GB
for a 10,000,000-line job; here it is one slot in a ``bytearray``: the key (12 bytes of BLAKE2b
of the id) and a fixed-size value, at most 92 % full, so about ``(12 + value) / 0.8`` bytes an
input, with no other allocation per input (``nbytes`` says what a table holds).

The table is split into 256 shards by the key's first byte, each an open-addressing table with
linear probing that grows by half when it is 92 % full: a growth copies one shard (1/256 of the
table), so no temporary ever doubles the memory. Given the number of entries to expect (a line
count), every shard is sized once, 80 % full at that count.

Why a 96-bit digest cannot drop an input: two of ``n`` ids share a key with probability about
``n**2 / 2**97``: 6e-16 for a 10,000,000-line job, 6e-14 for 100,000,000 lines, that is, once in
more than ten thousand billion such jobs. (The all-zero key marks an empty slot; a digest that
comes out all zero is stored as ``...01``, which adds ``2**-96`` per id to the same figure.)
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["KEY_BYTES", "DigestTable", "digest_key"]

#: The bytes of a key: 96 bits of BLAKE2b (see the module docstring for the arithmetic).
KEY_BYTES: Final = 12
_SHARDS: Final = 256
_EMPTY: Final = bytes(KEY_BYTES)
_NOT_EMPTY: Final = bytes(KEY_BYTES - 1) + b"\x01"
_MAX_LOAD: Final = 0.92  # grow a shard beyond this (a shard sized at 0.8 has 15 % to spare)
_SIZED_LOAD: Final = 0.8  # a shard sized from a count starts this full at that count
_MIN_SLOTS: Final = 8


def digest_key(data: bytes, person: bytes = b"") -> bytes:
    """The table key of ``data``: 12 bytes of BLAKE2b, personalised by ``person`` (up to 16
    bytes) so that keys of different kinds (an id, a line number) never meet."""
    key = hashlib.blake2b(data, digest_size=KEY_BYTES, person=person).digest()
    return key if key != _EMPTY else _NOT_EMPTY


class DigestTable:
    """A map from 12-byte keys (`digest_key`) to values of ``value_size`` bytes.

    Each key has a slot number (`slot`), under ``slots``, for a caller's own side table (a
    bitmap, one bit a slot): numbers stay put until a shard grows, which ``grown`` counts.

    Args:
        value_size: the bytes of each value (0: a set).
        expected: the entries to size for (more still fit: a shard grows when it fills).
    """

    __slots__ = ("_bufs", "_caps", "_counts", "_slot", "_value_size", "grown", "size")

    def __init__(self, value_size: int = 0, expected: int = 0) -> None:
        if value_size < 0:
            raise ValueError(f"value_size must be >= 0, got {value_size}")
        self._value_size = value_size
        self._slot = KEY_BYTES + value_size
        per_shard = int(max(expected, 0) / _SHARDS / _SIZED_LOAD) + 1
        cap = max(_MIN_SLOTS, per_shard)
        self._caps = [cap] * _SHARDS
        self._counts = [0] * _SHARDS
        self._bufs = [bytearray(cap * self._slot) for _ in range(_SHARDS)]
        self.size = 0
        #: How many times a shard grew (which renumbers its slots).
        self.grown = 0

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """The bytes the table's slots take (the per-table overhead aside)."""
        return sum(len(buf) for buf in self._bufs)

    @property
    def slots(self) -> int:
        """An upper bound of the slot numbers (`slot`)."""
        return max(self._caps) * _SHARDS

    # The probes below are written out in each method: a shared finder's call and tuple were
    # a tenth of a lookup (``get`` of 200,000 keys: 1.15 µs against 1.03 inline, in one run),
    # and a resume makes a few lookups a record. ``startswith`` compares in place (a slice a
    # probe would allocate); the home slot is the key as a big-endian number modulo the
    # shard's size (so mostly its last bytes, which the shard's own first byte does not bias).

    def slot(self, key: bytes) -> int:
        """The number of ``key``'s slot, or -1 if it is not in the table."""
        shard = key[0]
        buf = self._bufs[shard]
        cap = self._caps[shard]
        slot = self._slot
        i = int.from_bytes(key, "big") % cap
        while True:
            pos = i * slot
            if buf.startswith(key, pos):
                return i * _SHARDS + shard
            if buf.startswith(_EMPTY, pos):
                return -1
            i += 1
            if i == cap:
                i = 0

    def value_at(self, number: int) -> bytes:
        """The value in slot ``number`` (from `slot`)."""
        pos = (number // _SHARDS) * self._slot + KEY_BYTES
        return bytes(self._bufs[number % _SHARDS][pos : pos + self._value_size])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.slot(key) >= 0

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (``b""`` in a set), or ``None``."""
        shard = key[0]
        buf = self._bufs[shard]
        cap = self._caps[shard]
        slot = self._slot
        i = int.from_bytes(key, "big") % cap
        while True:
            pos = i * slot
            if buf.startswith(key, pos):
                return bytes(buf[pos + KEY_BYTES : pos + slot])
            if buf.startswith(_EMPTY, pos):
                return None
            i += 1
            if i == cap:
                i = 0

    def add(self, key: bytes) -> bool:
        """Put ``key`` in with an all-zero value if it is not there; whether it was new."""
        shard = key[0]
        buf = self._bufs[shard]
        cap = self._caps[shard]
        slot = self._slot
        i = int.from_bytes(key, "big") % cap
        while True:
            pos = i * slot
            if buf.startswith(key, pos):
                return False
            if buf.startswith(_EMPTY, pos):
                self._insert(shard, pos, key + bytes(self._value_size))
                return True
            i += 1
            if i == cap:
                i = 0

    def put(self, key: bytes, value: bytes) -> bytes | None:
        """Set the value of ``key``; returns the value it replaces (``None``: a new key)."""
        if len(value) != self._value_size:
            raise ValueError(f"a value is {self._value_size} bytes, got {len(value)}")
        shard = key[0]
        buf = self._bufs[shard]
        cap = self._caps[shard]
        slot = self._slot
        i = int.from_bytes(key, "big") % cap
        while True:
            pos = i * slot
            if buf.startswith(key, pos):
                old = bytes(buf[pos + KEY_BYTES : pos + slot])
                buf[pos + KEY_BYTES : pos + slot] = value
                return old
            if buf.startswith(_EMPTY, pos):
                self._insert(shard, pos, key + value)
                return None
            i += 1
            if i == cap:
                i = 0

    def _insert(self, shard: int, pos: int, entry: bytes) -> None:
        self._bufs[shard][pos : pos + self._slot] = entry
        self._counts[shard] += 1
        self.size += 1
        if self._counts[shard] > self._caps[shard] * _MAX_LOAD:
            self._grow(shard)

    def _grow(self, shard: int) -> None:
        old = self._bufs[shard]
        cap = self._caps[shard] * 3 // 2 + 1
        slot = self._slot
        new = bytearray(cap * slot)
        for start in range(0, len(old), slot):
            key = bytes(old[start : start + KEY_BYTES])
            if key == _EMPTY:
                continue
            i = int.from_bytes(key, "big") % cap
            while not new.startswith(_EMPTY, i * slot):
                i = i + 1 if i + 1 < cap else 0
            new[i * slot : (i + 1) * slot] = old[start : start + slot]
        self._bufs[shard] = new
        self._caps[shard] = cap
        self.grown += 1
