"""How the pool reaches the API: the proxy, TLS verification, a caller's own connector, and
URLs with their credentials hidden for display.

Each is decided once, when the client is built, so the request loop pays nothing for them:
the proxy of the base URL's host is looked up in the environment once (aiohttp's own
``trust_env`` would look it up in a thread on every request) and given to the session.
"""

from __future__ import annotations

import ipaddress
import os
import ssl as _ssl
import urllib.request
from collections.abc import Callable
from typing import Union

import aiohttp
from yarl import URL

__all__ = [
    "ConnectorFactory",
    "SSLOption",
    "check_proxy",
    "display_url",
    "env_proxy",
    "is_loopback",
    "ssl_context",
]

#: What ``ssl=`` accepts: an ``ssl.SSLContext``, or the path of a CA bundle (a PEM file) or of
#: a directory of CA certificates; ``None`` verifies against the system's trust store.
SSLOption = Union[_ssl.SSLContext, str, "os.PathLike[str]", None]

#: Called with no arguments inside the running event loop when the pool opens; returns the
#: connector the client's session uses (and closes with it).
ConnectorFactory = Callable[[], aiohttp.BaseConnector]


def display_url(url: URL | str) -> str:
    """``url`` as text with any password (or a bare user, often a token) replaced by ``***``."""
    if isinstance(url, str):
        url = URL(url)
    if url.password is not None:
        url = url.with_password("***")
    elif url.user is not None:
        url = url.with_user("***")
    return str(url)


def check_proxy(proxy: str) -> URL:
    """The parsed ``proxy=`` URL, or ``ValueError`` saying what to fix."""
    url = URL(proxy) if isinstance(proxy, str) else None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        shown = display_url(url) if url is not None else repr(proxy)
        raise ValueError(
            f"proxy: must be an http(s) URL such as http://proxy.example:3128, got {shown}"
        )
    return url


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback name or address."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` lists ``host``: ``*``, the host itself, or a domain it is in
    (``example.com`` and ``.example.com`` both cover ``api.example.com``), optionally with
    ``:port``; IP addresses match exactly."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, sep, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if sep and entry_port.isdigit() and port is not None and int(entry_port) != port:
            continue
        name = (name if sep else entry).strip("[]").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def env_proxy(base_url: URL) -> URL | None:
    """The proxy the environment gives for ``base_url``, as curl, requests and httpx read it.

    ``HTTPS_PROXY`` (or ``HTTP_PROXY`` for an ``http://`` base URL), else ``ALL_PROXY``, unless
    ``NO_PROXY`` lists the host (lower-case names win, as in the standard library). A loopback
    host never goes through an environment proxy (a local mock server must stay reachable).

    Raises:
        ValueError: the variable holds something that is not an http(s) URL.
    """
    host = base_url.host or ""
    if not host or is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(base_url.scheme) or proxies.get("all")
    if not chosen:
        return None
    if _bypassed(host, base_url.port, proxies.get("no", "")):
        return None
    if "://" not in chosen:
        chosen = f"http://{chosen}"  # "proxy:3128" is common in the wild
    try:
        return check_proxy(chosen)
    except ValueError:
        raise ValueError(
            f"the {base_url.scheme.upper()}_PROXY/ALL_PROXY environment variable is not an "
            f"http(s) proxy URL ({display_url(URL(chosen))}); fix it, or pass trust_env=False"
        ) from None


def ssl_context(value: SSLOption) -> _ssl.SSLContext | None:
    """The ``SSLContext`` for ``ssl=``: the given one, one trusting a CA bundle path (a file
    or a directory), or ``None`` for aiohttp's default verification.

    Raises:
        ValueError: the path does not exist, or holds no usable certificate.
        TypeError: not an ``SSLContext``, a path or ``None``.
    """
    if value is None or isinstance(value, _ssl.SSLContext):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"ssl: must be an ssl.SSLContext or the path of a CA bundle, got {type(value).__name__}"
        )
    path = os.fspath(value)
    if not os.path.exists(path):
        raise ValueError(f"ssl: no CA bundle at {path!r}; give a PEM file or a directory")
    try:
        if os.path.isdir(path):
            return _ssl.create_default_context(capath=path)
        return _ssl.create_default_context(cafile=path)
    except _ssl.SSLError as exc:
        raise ValueError(f"ssl: {path!r} is not a usable CA bundle ({exc.reason})") from None
