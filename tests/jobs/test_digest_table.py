"""``DigestTable`` against a dict: any sequence of puts, adds and lookups, through the growth of
its shards, and slot numbers that name one key each until a shard grows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reka_async.jobs._index import DigestTable, digest_key

# Few distinct keys, many of them in the same shard (its first byte), so probes run long,
# wrap around a shard's end, and shards grow.
_keys = st.builds(
    lambda shard, rest: bytes([shard]) + rest,
    st.sampled_from([0, 1, 255]),
    st.binary(min_size=11, max_size=11).filter(lambda b: any(b)),
)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "add", "get", "slot"]), _keys, st.binary(min_size=3, max_size=3)
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, expected=st.sampled_from([0, 10, 1000]))
def test_a_table_answers_as_a_dict(ops: list[tuple[str, bytes, bytes]], expected: int) -> None:
    table = DigestTable(3, expected)
    model: dict[bytes, bytes] = {}
    for op, key, value in ops:
        if op == "put":
            assert table.put(key, value) == model.get(key)
            model[key] = value
        elif op == "add":
            assert table.add(key) is (key not in model)
            model.setdefault(key, bytes(3))
        elif op == "get":
            assert table.get(key) == model.get(key)
        else:
            slot = table.slot(key)
            assert (slot >= 0) is (key in model)
            if slot >= 0:
                assert 0 <= slot < table.slots
                assert table.value_at(slot) == model[key]
        assert len(table) == len(model)
    grown = table.grown
    slots = {key: table.slot(key) for key in model}
    assert len(set(slots.values())) == len(slots)  # one key a slot
    for key in model:
        table.get(key)
    assert table.grown == grown
    assert {key: table.slot(key) for key in model} == slots


def test_a_set_holds_each_key_once() -> None:
    table = DigestTable(0, 5)
    keys = [digest_key(str(i).encode()) for i in range(5000)]
    assert all(table.add(k) for k in keys)
    assert not any(table.add(k) for k in keys)
    assert table.grown > 0  # sized for 5, it grew
    assert len(table) == 5000
    assert all(k in table for k in keys)
    assert digest_key(b"other") not in table
