"""Issue 30: a proxy's password (``proxy=`` or ``HTTPS_PROXY``) joins the API key in the
scrubbing. A small loopback proxy answers CONNECT in every failing way (407, 502, no answer,
a closed port, a tunnel that is no TLS); every exception of the chain, the repr, the log
records and the CLI's output file and streams are swept for the password and the key."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from test_secrets import KEY, assert_clean_exc, chain

from reka_async import AsyncClient, RetryPolicy
from reka_async._exceptions import APIConnectionError

PASSWORD = "pw-CANARY-51c0de"
ROOT = Path(__file__).resolve().parents[2]
BASE = "https://api.example.test/v1"
MSGS = [{"role": "user", "content": "hi"}]

Answer = Callable[[asyncio.StreamWriter], None]


def _reply(status: bytes) -> Answer:
    def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")

    return answer


ANSWERS: dict[str, Answer] = {
    "407": _reply(b"407 Proxy Authentication Required"),
    "502": _reply(b"502 Bad Gateway"),
    "no answer": lambda writer: None,
    "a tunnel that is no TLS": lambda writer: writer.write(
        b"HTTP/1.1 200 Connection established\r\n\r\nnot a TLS server hello\r\n\r\n"
    ),
}


async def _proxy(answer: Answer) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            answer(writer)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_no_secret(text: str) -> None:
    assert PASSWORD not in text, text
    assert KEY not in text, text


@pytest.mark.parametrize("how", ["proxy=", "HTTPS_PROXY"])
@pytest.mark.parametrize("case", [*ANSWERS, "a closed port"])
async def test_no_proxy_failure_shows_the_password(
    case: str, how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="reka_async")
    if case == "a closed port":
        ports: AsyncIterator[int] | None = None
        port = _closed_port()
    else:
        ports = _proxy(ANSWERS[case])
        port = await ports.__anext__()
    proxy = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    options: dict[str, str] = {}
    if how == "proxy=":
        options["proxy"] = proxy
    else:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    try:
        async with AsyncClient(
            KEY, BASE, max_retries=1, retry_policy=RetryPolicy(base=0.001, cap=0.01), **options
        ) as client:
            _assert_no_secret(repr(client))
            with pytest.raises(APIConnectionError) as info:
                await client.chat.create(model="reka-flash", messages=MSGS, timeout=10)
    finally:
        if ports is not None:
            await ports.aclose()
    error = info.value
    assert_clean_exc(error)
    for link in chain(error):
        for text in (str(link), repr(link), repr(link.args), repr(vars(link))):
            _assert_no_secret(text)
        _assert_no_secret(repr(getattr(link, "request_info", "")))
    if case in ("407", "502"):
        assert f"the proxy refused the connection: HTTP {case}" in str(error)
    assert caplog.records
    for record in caplog.records:
        _assert_no_secret(record.getMessage())
    _assert_no_secret(caplog.text)


async def test_the_cli_keeps_the_proxy_password_out_of_its_output(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"custom_id": "a", "prompt": "hi"}) + "\n", encoding="utf-8")
    async for port in _proxy(ANSWERS["502"]):
        env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
        env.update(REKA_API_KEY=KEY, HTTPS_PROXY=f"http://user:{PASSWORD}@127.0.0.1:{port}")
        cmd = [sys.executable, "-m", "reka_async", "--base-url", BASE, "-vv"]
        cmd += ["batch", str(inp), "-o", str(out), "--max-retries", "1", "--no-progress"]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
        break
    _assert_no_secret(stdout.decode())
    _assert_no_secret(stderr.decode())
    text = out.read_text(encoding="utf-8")
    _assert_no_secret(text)
    assert "the proxy refused the connection: HTTP 502" in text, stderr.decode()


def test_a_cause_whose_text_cannot_be_cleaned_is_not_chained() -> None:
    from reka_async._http.errors import map_errors

    class Stubborn(OSError):
        def __str__(self) -> str:
            return f"failed at http://user:{PASSWORD}@proxy.example:3128"

    with pytest.raises(APIConnectionError) as info, map_errors("POST /chat"):
        raise Stubborn()
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    _assert_no_secret(str(info.value))
    _assert_no_secret(repr(info.value))
