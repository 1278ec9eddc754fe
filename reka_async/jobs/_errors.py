"""The errors of a job: input lines that cannot become requests (their type names go into
OUTPUT), and the refusals and failures of the job itself (the CLI maps them to exit statuses).
"""

from __future__ import annotations

from .._exceptions import InvalidRequestError, RekaError

__all__ = ["DuplicateCustomId", "InputChanged", "InvalidInputLine", "JobIOError", "OutputLocked"]


class InvalidInputLine(InvalidRequestError):
    """A line of the batch input that cannot become a request (bad JSON, bad fields...)."""


class DuplicateCustomId(InvalidRequestError):
    """A batch input line reuses a ``custom_id`` seen earlier in the same input."""


class OutputLocked(RekaError):
    """Another run is writing the same output (it holds the output's lock). Exit status 2."""


class InputChanged(RekaError):
    """Resuming would pair old answers with new requests: inputs already answered in the
    output changed since (their request hash differs). Exit status 2.

    Attributes:
        changed: ``(line, custom_id)`` of the changed inputs found (at most the first 20).
        count: how many changed inputs were found.
    """

    def __init__(self, message: str, *, changed: list[tuple[int, str]], count: int) -> None:
        super().__init__(message)
        self.changed = changed
        self.count = count


class JobIOError(RekaError):
    """Reading the input or writing the output failed (a full disk, a lost mount...).
    Exit status 74. The message names the path.

    Attributes:
        path: the file that failed.
        written: records written to the output before the failure.
    """

    def __init__(self, message: str, *, path: str, written: int) -> None:
        super().__init__(message)
        self.path = path
        self.written = written
