"""The error tree of ``docs/guides/errors.md`` is the exception hierarchy: every public
exception class appears once, under the class it derives from, and no name is drawn that the
package does not raise."""

from __future__ import annotations

import re
from pathlib import Path

import reka_async

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"\b([A-Z][A-Za-z]*Error)\b")


def _drawn_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` from the tree of "Errors, retries and timeouts"."""
    text = (ROOT / "docs" / "guides" / "errors.md").read_text(encoding="utf-8")
    section = text[text.index("# Errors, retries and timeouts") :]
    block = section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n"))]
    lines = block.splitlines()
    assert lines[0].strip() == "RekaError"
    tree: dict[str, str | None] = {"RekaError": None}
    stack = ["RekaError"]  # stack[d]: the last node drawn at depth d
    depth = 0
    for line in lines[1:]:
        # "(also ValueError)": a note on the class, not a node of the tree.
        names = list(dict.fromkeys(_NAME.findall(re.sub(r"\(.*?\)", "", line))))
        if "── " in line:
            depth = line.index("── ") // 4 + 1
            del stack[depth:]
        # A line without a branch continues the siblings drawn on the line above it.
        for name in names:
            assert name not in tree, f"{name} is drawn twice"
            tree[name] = stack[depth - 1]
        if "── " in line:
            stack.append(names[0])
    return tree


def _public_exceptions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in reka_async.__all__:
        obj = getattr(reka_async, name)
        if isinstance(obj, type) and issubclass(obj, reka_async.RekaError):
            bases = [b for b in obj.__bases__ if issubclass(b, reka_async.RekaError)]
            found[name] = bases[0].__name__ if bases else None
    return found


def test_the_drawn_error_tree_matches_the_exception_classes() -> None:
    drawn, actual = _drawn_tree(), _public_exceptions()
    assert sorted(set(actual) - set(drawn)) == [], "public exceptions missing from the tree"
    assert sorted(set(drawn) - set(actual)) == [], "names drawn that are no public exception"
    wrong = {n: (drawn[n], actual[n]) for n in actual if drawn[n] != actual[n]}
    assert wrong == {}, "drawn under the wrong parent: {name: (page, code)}"


#: A status each status class is raised with (the record's ``error.status``).
_STATUS = {
    "BadRequestError": 400,
    "AuthenticationError": 401,
    "PermissionDeniedError": 403,
    "NotFoundError": 404,
    "MethodNotAllowedError": 405,
    "RequestTimeoutError": 408,
    "ConflictError": 409,
    "UnprocessableEntityError": 422,
    "RateLimitError": 429,
    "InsufficientCreditsError": 429,
    "InternalServerError": 500,
}


def _retry_failed_lists(text: str, sent: str, kept: str) -> tuple[set[str], set[str]]:
    flat = " ".join(text.split())

    def names(after: str) -> set[str]:
        start = flat.index(after) + len(after)
        return set(_NAME.findall(flat[start : flat.index(")", start)]))

    return names(sent), names(kept)


def test_the_retry_failed_lists_match_what_resume_sends_again() -> None:
    from reka_async.jobs._resume import retryable_failure

    classes = [
        n for n in _public_exceptions() if issubclass(getattr(reka_async, n), reka_async.APIError)
    ]
    classes = [n for n in classes if n not in ("APIError", "APIStatusError")]
    # Refusals before sending that a record can hold and a retry can change (a price or a
    # media bound given later): named in the lists too.
    unsent = [
        n
        for n in _public_exceptions()
        if issubclass(getattr(reka_async, n), reka_async.InvalidRequestError)
        and n != "InvalidRequestError"
    ]
    retried = {
        n for n in classes + unsent if retryable_failure({"type": n, "status": _STATUS.get(n)})
    }
    kept = set(classes) - retried
    page = (ROOT / "docs" / "guides" / "cli.md").read_text(encoding="utf-8")
    from reka_async.cli._epilogs import BATCH_EPILOG

    documented = {
        "docs/guides/cli.md": _retry_failed_lists(
            page,
            "--retry-failed` also sends again the failures that can change (",
            "keeps input errors (",
        ),
        "batch --help": _retry_failed_lists(
            BATCH_EPILOG,
            "--retry-failed sends again the failures that can change (",
            "keeping input errors (",
        ),
    }
    for where, (sent, keeps) in documented.items():
        assert sent == retried, where
        assert keeps == kept, where
