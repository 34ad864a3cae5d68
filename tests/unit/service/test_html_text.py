"""HTML comment bodies become the text a reader sees."""

from __future__ import annotations

import pytest

from service.domain.html_text import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello <b>world</b></p><p>again &amp; again</p>", "Hello world\nagain & again"),
        ("one<br>two<br/>three", "one\ntwo\nthree"),
        ("<blockquote>quoted</blockquote>reply", "quoted\nreply"),
        ("<p>  spaced \u00a0 out  </p>", "spaced out"),
        ("<script>alert(1)</script><style>p{}</style>shown", "shown"),
        ('<p class="idiot" title="buy now">kind words</p>', "kind words"),
        ("2 < 3 and 5 > 4, &lt;3", "2 < 3 and 5 > 4, <3"),
        ("unterminated <b", "unterminated <b"),
    ],
)
def test_markup_is_dropped_and_the_text_kept(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (
            '<a href="https://pills.example/buy">click</a> here',
            "click https://pills.example/buy here",
        ),
        (
            '<a href="https://herald.example/a">https://herald.example/a</a>',
            "https://herald.example/a",
        ),
        ('<a href="javascript:alert(1)">harmless</a>', "harmless"),
        (
            '<a href="https://a.example">a<a href="https://b.example">b</a>',
            "a https://a.example b https://b.example",
        ),
    ],
    ids=["hidden-target", "shown-target", "not-a-link", "unclosed"],
)
def test_a_link_target_is_kept_unless_its_text_shows_it(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_deep_nesting_costs_nothing() -> None:
    assert html_to_text("<div>" * 50_000 + "deep" + "</div>" * 50_000) == "deep"
