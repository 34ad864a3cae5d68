"""HTML comment bodies as the text a reader sees, for scoring.

Coral's external phase sends the comment's HTML by default, and Perspective clients may send
`comment.type: "HTML"`. Scoring the markup as text would count tags as words; this keeps what
is read: text with entities decoded, a line break for each block, no script or style content.
A link's target is kept after its text unless the text already shows it, so a link hidden
behind harmless words still reaches the link rules and the spam score.

The input is hostile: `html.parser` is a forgiving, non-recursive tokenizer (deep nesting
costs nothing), and unterminated markup ends as text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

_BLOCKS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN: Final = frozenset({"script", "style", "template", "noscript"})
_LINK_TARGET: Final = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACES: Final = re.compile(r"[ \t\r\f\v\u00a0]+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._link: tuple[str, int] | None = None  # open <a>: its target, where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._close_link()
            href = next((value for name, value in attrs if name == "href" and value), None)
            if href is not None and _LINK_TARGET.fullmatch(href.strip()):
                self._link = (href.strip(), len(self.parts))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._close_link()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    def _close_link(self) -> None:
        if self._link is None:
            return
        href, start = self._link
        self._link = None
        if href not in "".join(self.parts[start:]):
            self.parts.append(f" {href} ")

    def text(self) -> str:
        self._close_link()
        lines = (_SPACES.sub(" ", line).strip() for line in "".join(self.parts).split("\n"))
        return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.text()
