"""The JSON backend's stdlib fast path gives json.loads's result and errors for every input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reka_async._wire import _json

pytestmark = pytest.mark.skipif(
    getattr(_json, "_scan", None) is None, reason="orjson is the backend: no stdlib fast path"
)

SAME = [
    b'{"id":"a","responses":[{"message":{"content":"caf\\u00e9 \xc3\xa9"}}],"n":1.5e3}',
    '{"a": [1, 2, {"b": null}], "c": true, "d": "x"}',
    b"[]",
    b'"just a string"',
    b"12",
    b' {"leading": 1}',  # whitespace around the value: json.loads's path
    b'{"trailing": 1}\n',
    b'\xef\xbb\xbf{"bom": 1}',  # a UTF-8 BOM: json.loads decodes it as utf-8-sig
    '{"a":1}'.encode("utf-16"),  # UTF-16, detected by json.loads
    b'{"big": 123456789012345678901234567890}',
    b'{"nan": NaN, "inf": -Infinity}',
]

BAD = [
    b"",
    b"{",
    b'{"a": 1} extra',
    b'{"a": 1}{"b": 2}',
    b"\xff\xfe\xfd",
    b"nope",
    '{"a": 1,}',
]


@pytest.mark.parametrize("data", SAME)
def test_the_fast_path_gives_the_stdlibs_value(data: Any) -> None:
    assert _json.loads(data) == json.loads(data)
    assert type(_json.loads(data)) is type(json.loads(data))


def _error(loads: Any, data: Any) -> ValueError:
    try:
        loads(data)
    except ValueError as exc:
        return exc
    raise AssertionError(f"{data!r} was parsed")


@pytest.mark.parametrize("data", BAD)
def test_invalid_json_raises_the_stdlibs_error(data: Any) -> None:
    expected, got = _error(json.loads, data), _error(_json.loads, data)
    assert type(got) is type(expected)
    assert str(got) == str(expected)


def test_plain_json_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: Any) -> Any:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(_json.json, "loads", refuse)
    assert _json.loads(b'{"a": [1, "b"]}') == {"a": [1, "b"]}
    assert _json.loads('{"a": 1}') == {"a": 1}
    with pytest.raises(AssertionError):  # and only plain JSON does
        _json.loads(b'{"a": 1}\n')
