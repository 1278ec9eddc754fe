"""Issue 30: a list flag (``--concurrency 1,,2``) refuses an empty entry instead of skipping it."""

from __future__ import annotations

import pytest

from reka_async.cli._parser import build_parser


@pytest.mark.parametrize("value", ["1,,2", "1,2,", ",4", " , "])
def test_an_empty_entry_of_a_list_flag_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser, _ = build_parser()
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["bench", "--concurrency", value])
    assert info.value.code == 2
    assert "remove the empty entry" in capsys.readouterr().err


def test_a_full_list_is_still_accepted() -> None:
    parser, _ = build_parser()
    assert parser.parse_args(["bench", "--concurrency", "1, 16,64"]).concurrency == [1, 16, 64]
