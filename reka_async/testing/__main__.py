"""``python -m reka_async.testing``: serve the mock Reka Chat API (see `main`)."""

from ._main import main

if __name__ == "__main__":
    raise SystemExit(main())
