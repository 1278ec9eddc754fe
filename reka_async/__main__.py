"""``python -m reka_async``: the ``reka-async`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
