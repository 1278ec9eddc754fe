"""Optional integrations with other frameworks.

Each submodule imports its framework lazily, so importing ``reka_async.integrations.<name>``
works without the framework installed; using it then raises an ``ImportError`` that names the
extra to install (for example ``pip install 'reka-async[ray]'`` for
``reka_async.integrations.ray``).
"""

from __future__ import annotations

__all__: list[str] = []
