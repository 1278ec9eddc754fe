"""Issue 30: Research domain lists refuse URLs (scheme, query, fragment) and whitespace, and
keep accepting plain and path-scoped domains."""

from __future__ import annotations

import pytest

from reka_async import InvalidRequestError
from reka_async._research import research_body


@pytest.mark.parametrize(
    "domain", ["https://evil.com/x?y", "http://reka.ai", "reka.ai?q=1", "reka.ai#x", "reka .ai"]
)
@pytest.mark.parametrize("field", ["allowed_domains", "blocked_domains"])
def test_a_url_or_whitespace_is_refused(field: str, domain: str) -> None:
    with pytest.raises(InvalidRequestError, match="is not a domain name"):
        research_body({"web_search": {field: [domain]}}, stream=False)


def test_plain_and_path_scoped_domains_are_accepted() -> None:
    body = research_body(
        {"web_search": {"allowed_domains": ["reka.ai", "reka.ai/docs"]}}, stream=False
    )
    assert body["web_search"]["allowed_domains"] == ["reka.ai", "reka.ai/docs"]
