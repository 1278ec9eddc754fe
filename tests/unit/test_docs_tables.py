"""The tables of the documentation that restate the code name what the code has: the keys of
``ChatArgs`` (on the Chat arguments page and in ``help(client.chat.create)``) and the CLI's
exit statuses."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from reka_async import AsyncChat, Chat
from reka_async.cli._exit import ExitCode
from reka_async.types import ChatArgs

ROOT = Path(__file__).resolve().parents[2]
KEYS = list(ChatArgs.__annotations__)


def _first_cells(text: str) -> list[str]:
    """The first cell of every table row of ``text`` whose cell is one code span."""
    return re.findall(r"^\| `([^`|]+)` \|", text, flags=re.M)


def test_chat_args_has_the_keys_the_page_expects() -> None:
    # If a key is added, the tables below fail until it is documented: this only guards
    # against reading an empty list.
    assert {"messages", "model", "max_tokens", "stream_mode", "extra_body"} <= set(KEYS)


def test_the_chat_arguments_page_lists_every_key_once() -> None:
    page = (ROOT / "docs" / "reference" / "chat-args.md").read_text(encoding="utf-8")
    listed = _first_cells(page)
    assert sorted(listed) == sorted(KEYS)
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("create", [AsyncChat.create, Chat.create], ids=["AsyncChat", "Chat"])
def test_help_of_chat_create_names_every_key(create: object) -> None:
    doc = inspect.getdoc(create) or ""
    section = doc[doc.index("Keyword Args:\n") :]
    section = section[: section.index("\n\n")]
    named = re.findall(r"^    (\w+): ", section, flags=re.M)
    assert sorted(named) == sorted(KEYS)  # every key, and no other
    assert len(named) == len(set(named))


def test_the_exit_status_table_is_the_exit_codes() -> None:
    page = (ROOT / "docs" / "guides" / "cli.md").read_text(encoding="utf-8")
    table = page[page.index("| status | meaning |") :]
    table = table[: table.index("\n\n")]
    statuses = [int(n) for n in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert statuses == sorted(code.value for code in ExitCode)
