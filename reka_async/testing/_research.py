"""Research answers of the mock server (``reka-flash-research`` or a ``research`` field).

A research answer has ``reasoning_content``; with web search on (the default) also
``reasoning_steps`` (an assistant step calling ``search_web`` with the question as query, then
the ``tool`` step with its results) and ``annotations``: one ``url_citation`` per result, its
``start_index``/``end_index`` spanning the result's title in the content, which ends with
``"\\n\\nSources: <title>; <title>."``. Everything but the call id is deterministic.

The cited domains honour ``research.web_search``: ``allowed_domains`` are the only ones cited;
``blocked_domains`` (and their subdomains) are never cited; ``max_uses: 0`` or
``enabled: false`` mean no search, no steps and no citations.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

RESEARCH_MODELS: Final = ("reka-flash-research",)
_DOMAINS: Final = ("en.wikipedia.org", "www.example.com", "docs.example.org")
_RESULTS: Final = 2
_DIRECTIVE_RE: Final = re.compile(r"\[\[[^\[\]]*\]\]")


@dataclass(frozen=True, slots=True)
class Research:
    """What a research answer adds to its message."""

    reasoning: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    suffix: str = ""


def wants_research(body: Mapping[str, Any]) -> bool:
    """Whether an OpenAI-dialect request asks for a research answer."""
    return body.get("model") in RESEARCH_MODELS or isinstance(body.get("research"), dict)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _blocked(domain: str, blocked: list[str]) -> bool:
    return any(domain == b or domain.endswith("." + b) for b in blocked)


def _domains(search: Mapping[str, Any]) -> list[str]:
    allowed = [d for d in search.get("allowed_domains") or [] if isinstance(d, str) and d]
    if allowed:
        return allowed[:_RESULTS]
    blocked = [d for d in search.get("blocked_domains") or [] if isinstance(d, str)]
    return [d for d in _DOMAINS if not _blocked(d, blocked)][:_RESULTS]


def research(
    body: Mapping[str, Any], question: str, text: str, call_id: Callable[[], str]
) -> Research:
    """The research part of the answer whose plain content is ``text``.

    Args:
        body: The validated OpenAI-dialect request.
        question: The text of the last message (its directives are dropped from the query).
        text: The answer's content before the sources sentence.
        call_id: Hands out the id of the ``search_web`` call.
    """
    options = _object(body.get("research"))
    search = _object(options.get("web_search"))
    thinking = options.get("parallel_thinking")
    mode = thinking.get("mode", "none") if isinstance(thinking, dict) else "none"
    query = " ".join(_DIRECTIVE_RE.sub(" ", question).split()[:12]) or "mock"
    enabled = search.get("enabled", True) is not False and search.get("max_uses", 1) != 0
    domains = _domains(search) if enabled else []
    if not domains:
        reasoning = f"The question is: {query}. I answer it without searching the web."
        if mode != "none":
            reasoning += f" Parallel thinking: {mode}."
        return Research(reasoning)

    reasoning = f"The question is: {query}. I search the web for it."
    if mode != "none":
        reasoning += f" Parallel thinking: {mode}."
    slug = hashlib.sha256(query.encode()).hexdigest()[:10]
    results = [
        {
            "url": f"https://{domain}/mock/{slug}",
            "title": f"Mock source {i + 1} on {domain}",
            "snippet": f"What {domain} says about {query}.",
        }
        for i, domain in enumerate(domains)
    ]
    call = call_id()
    steps: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "reasoning_content": f"Searching the web for: {query}",
            "tool_calls": [{"id": call, "name": "search_web", "args": {"query": query}}],
        },
        {
            "role": "tool",
            "tool_call_id": call,
            "content": {"tool_name": "search_web", "tool_output": results},
        },
    ]
    suffix = "\n\nSources: "
    annotations = []
    for i, result in enumerate(results):
        if i:
            suffix += "; "
        start = len(text) + len(suffix)
        suffix += result["title"]
        citation = {
            "start_index": start,
            "end_index": start + len(result["title"]),
            "title": result["title"],
            "url": result["url"],
        }
        annotations.append({"type": "url_citation", "url_citation": citation})
    return Research(reasoning, steps, annotations, suffix + ".")
