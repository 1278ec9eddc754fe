"""The mock server's socket and lifecycle: bind, serve, close, and the URL to give a client.

`MockRekaServer` (``_server``) builds on `Serving`: this module holds what any local
``aiohttp.web`` server needs, the other the API's handlers and state.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from ._quiet import REQUEST_LOGGER, install_accept_filter


class Serving:
    """An ``aiohttp.web`` application bound to ``host:port`` (0: a free port) once started.

    Args:
        host: The interface to bind.
        port: The port to bind; 0 picks a free one (see `port`).
        ssl_context: Serve HTTPS with this server-side context; None serves plain HTTP.
    """

    def __init__(self, *, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self._host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._app = web.Application(client_max_size=64 * 1024 * 1024)

    @property
    def app(self) -> web.Application:
        """The ``aiohttp.web`` application behind the server.

        Returns:
            The application, e.g. to run it under ``aiohttp.test_utils.TestServer``.
        """
        return self._app

    @property
    def port(self) -> int:
        """The bound TCP port.

        Returns:
            The port number.

        Raises:
            RuntimeError: The server has not been started.
        """
        if self._port is None:
            raise RuntimeError("MockRekaServer is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:8000/v1``.

        Returns:
            The base URL.

        Raises:
            RuntimeError: The server has not been started.
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    async def start(self) -> None:
        """Bind the socket and start serving.

        Raises:
            RuntimeError: The server is already running.
        """
        if self._runner is not None:
            raise RuntimeError("MockRekaServer is already running")
        install_accept_filter()  # out of descriptors: one line, not a traceback per accept()
        # handler_cancellation: a client hanging up cancels its handler (slow faults
        # must not outlive their client); a short shutdown_timeout keeps close() quick;
        # REQUEST_LOGGER: a malformed request is one line, not a traceback.
        runner = web.AppRunner(
            self._app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.25,
            logger=REQUEST_LOGGER,
        )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, self._host, self._requested_port, ssl_context=self._ssl_context
            )
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving and close every connection; calling it twice is harmless."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
