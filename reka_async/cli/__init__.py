"""The ``reka-async`` command line: ``chat``, ``batch``, ``models`` and ``mock-server``.

``batch`` is the main job: it streams a JSONL (or plain-text) file through ``BatchRunner`` and
appends one JSON line per input to the output as each result arrives, so an interrupted run
loses at most the requests in flight and ``--resume`` picks up where it stopped.

Modules: ``_parser`` (argparse, epilogs, bounded-number types), ``_common`` (messages, the key,
the client), one module a command (``_chat``, ``_models``, ``_batch``, ``_mock``) and ``_main``
(exit statuses). The batch job format itself is ``reka_async.jobs``.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
