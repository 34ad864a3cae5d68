"""Text normalisation that undoes cheap evasion tricks.

`normalize` is deliberately free of per-character Python loops: it is built from
``str.translate`` tables and precompiled regular expressions so that it can run on
every comment at scoring time.  The output is lower-case ASCII-ish text in which

* HTML tags are removed and entities decoded,
* Unicode is NFKC-normalised, case-folded and stripped of accents, zero-width and
  control characters,
* Cyrillic / Greek look-alike letters are mapped to Latin,
* URLs, e-mail addresses and phone numbers become the tokens ``_url_``, ``_email_``
  and ``_phone_`` followed by the domain (dots replaced by ``_``) where there is one,
  also when the dot is spelt out or spaced to dodge link filters (``site dot com``,
  ``site (dot) com``, ``site . com``),
* ``@handles`` become ``_mention_``,
* leetspeak inside words is mapped back to letters (``1d10t`` -> ``idiot``,
  ``$pam`` -> ``spam``),
* spaced-out letters are joined (``f u c k`` -> ``fuck``),
* runs of three or more identical characters are squeezed to one
  (``stuuuupid`` -> ``stupid``),
* whitespace is collapsed.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["EMAIL_TOKEN", "MENTION_TOKEN", "PHONE_TOKEN", "URL_TOKEN", "normalize"]

URL_TOKEN = "_url_"  # noqa: S105 - placeholder word, not a secret
EMAIL_TOKEN = "_email_"  # noqa: S105 - placeholder word, not a secret
PHONE_TOKEN = "_phone_"  # noqa: S105 - placeholder word, not a secret
MENTION_TOKEN = "_mention_"  # noqa: S105 - placeholder word, not a secret


def _build_unicode_table() -> dict[int, str | None]:
    """Translate table applied after NFKD decomposition of non-ASCII text."""
    table: dict[int, str | None] = {}
    # Zero-width and invisible formatting characters: delete (they glue words).
    for cp in (0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0xFEFF):
        table[cp] = None
    for start, end in ((0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F)):
        for cp in range(start, end + 1):
            table[cp] = None
    # Variation selectors.
    for cp in range(0xFE00, 0xFE0F + 1):
        table[cp] = None
    # Combining marks (accents, "Zalgo" stacking): delete after decomposition.
    for start, end in ((0x0300, 0x2100), (0xFE20, 0xFE30)):
        for cp in range(start, end):
            if cp not in table and unicodedata.combining(chr(cp)):
                table[cp] = None
    # Unicode spaces that NFKC leaves alone.
    for cp in (0x2028, 0x2029, 0x3000, 0x1680):
        table[cp] = " "
    # Look-alike letters (already case-folded, so lower case only).
    homoglyphs = {
        # Cyrillic
        "\u0430": "a",
        "\u0432": "b",
        "\u0435": "e",
        "\u0451": "e",
        "\u043a": "k",
        "\u043c": "m",
        "\u043d": "h",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0442": "t",
        "\u0443": "y",
        "\u0445": "x",
        "\u044c": "b",
        "\u0455": "s",
        "\u0456": "i",
        "\u0457": "i",
        "\u0458": "j",
        "\u0501": "d",
        "\u04bb": "h",
        "\u051b": "q",
        "\u051d": "w",
        "\u04cf": "l",
        "\u0261": "g",
        "\u0475": "v",
        "\u04af": "y",
        "\u0581": "g",
        "\u0585": "o",
        "\u057d": "u",
        # Greek
        "\u03b1": "a",
        "\u03b2": "b",
        "\u03b3": "y",
        "\u03b4": "d",
        "\u03b5": "e",
        "\u03b6": "z",
        "\u03b9": "i",
        "\u03ba": "k",
        "\u03bc": "u",
        "\u03bd": "v",
        "\u03bf": "o",
        "\u03c1": "p",
        "\u03c3": "o",
        "\u03c2": "c",
        "\u03c4": "t",
        "\u03c5": "u",
        "\u03c7": "x",
        "\u03c9": "w",
        # Latin oddities
        "\u0131": "i",
        "\u0237": "j",
        "\u0142": "l",
        "\u00f8": "o",
        "\u0111": "d",
        "\u0127": "h",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u0153": "oe",
        "\u017f": "s",
        "\u0251": "a",
        "\u0269": "i",
        "\u0280": "r",
        "\u1d00": "a",
        # Punctuation look-alikes
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2022": " ",
        "\u00b7": ".",
    }
    for src, dst in homoglyphs.items():
        table[ord(src)] = dst
    return table


def _build_control_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):
        table[cp] = None
    for ch in "\t\n\r\f\v\x1c\x1d\x1e\x1f\x85":
        table[ord(ch)] = " "
    return table


_UNICODE_TABLE = _build_unicode_table()
_CONTROL_TABLE = _build_control_table()
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_HTML_TAG_RE = re.compile(r"<(?:/?[a-zA-Z][^<>]{0,500}|!--.{0,2000}?--)>", re.DOTALL)

_TLDS = (
    "com|net|org|info|biz|io|co|ly|me|tv|us|uk|ca|de|ru|cn|in|au|fr|nl|it|es|pl|br|jp|tk|"
    "xyz|online|site|club|top|gl|be|gd|to|cc|ws|su|eu|app|dev|shop|store|link|click|live"
)
_EMAIL_RE = re.compile(r"[a-z0-9][a-z0-9._%+-]{0,63}@([a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})+)")
_URL_RE = re.compile(r"(?:(?:https?|ftp)://|www\.)([^\s/?#<>\"'),]{1,253})[^\s<>\"']{0,2000}")
_BARE_DOMAIN_RE = re.compile(
    r"(?<![\w.@-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,4}"
    rf"(?:{_TLDS}))(?![\w-])(?:/[^\s<>\"']{{0,2000}})?"
)
_TLD_HINT_RE = re.compile(rf"\.(?:{_TLDS})\b")
# Domains written to dodge link filters: "site dot com", "site (dot) com", "site [.] com",
# "site . com", "site .com", and "site. com/path".  Only top-level domains that are not
# also common English words, so that "tell me. in the end" stays text.
_DODGE_TLDS = "com|net|org|info|biz|xyz|ru|tk|io|ly|online|site|club|shop|store"
_DODGE_DOT = (
    r"(?:\s*[(\[{]\s*(?:dot|\.)\s*[)\]}]\s*|\s+dot\s+|\s+\.\s+|\s+\.(?=[a-z])"
    rf"|\.\s+(?=(?:{_DODGE_TLDS})/))"
)
_DODGED_DOMAIN_RE = re.compile(
    rf"(?<![\w.@-])((?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?{_DODGE_DOT}){{1,3}}"
    rf"(?:{_DODGE_TLDS}))(?![\w-])(?:/[^\s<>\"']{{0,2000}})?"
)
_DODGE_HINT_RE = re.compile(rf"(?:dot|\.)\s*[)\]}}]?\s*(?:{_DODGE_TLDS})\b")
_DODGE_SEP_RE = re.compile(r"\s*(?:[(\[{]\s*(?:dot|\.)\s*[)\]}]|\sdot\s|\.)\s*")
_PHONE_RE = re.compile(
    r"(?<![\w+(])(?<!\d[ .,])"
    r"(?:[+(0]\(?(?:\d[ .()-]{0,2}){7,14}\d|\d{3}[ .-]\d{3}[ .-]\d{4})(?!\w)"
)
_PHONE_HINT_RE = re.compile(r"\d\d\d")
_MENTION_RE = re.compile(r"(?<![\w.])@[a-z0-9_]{1,30}")

# Runs that contain at least one leet character; letters are checked in the callback.
_LEET_RUN_RE = re.compile(r"(?<![a-z0-9@$|!+])[a-z]*+[0-9@$|!+][a-z0-9@$|!+]*")
_LEET_TABLE = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "|": "l",
        "!": "i",
        "+": "t",
    }
)
_HAS_LETTER_RE = re.compile(r"[a-z]")

# Three or more single characters separated by one or two separators: "f u c k", "s.p.a.m".
_SPACED_RE = re.compile(r"(?<![^\W_])[a-z0-9@$](?:[ .*_\-]{1,2}[a-z0-9@$]){2,}(?![^\W_])")
_SPACED_SEP_RE = re.compile(r"[ .*_\-]")
_REPEAT_RE = re.compile(r"([^\W\d]|[^\w\s])\1{2,}")
_REPEAT_HINT_RE = re.compile(r"(.)\1\1")


def _domain_token(domain: str) -> str:
    domain = domain.strip(".").removeprefix("www.")
    domain = domain.split(":", 1)[0]
    labels = [part for part in domain.split(".") if part]
    if len(labels) > 2:
        labels = labels[-2:]
    return "_".join(labels)


def _email_sub(match: re.Match[str]) -> str:
    return f" {EMAIL_TOKEN} {_domain_token(match.group(1))} "


def _url_sub(match: re.Match[str]) -> str:
    return f" {URL_TOKEN} {_domain_token(match.group(1))} "


def _dodged_url_sub(match: re.Match[str]) -> str:
    return f" {URL_TOKEN} {_domain_token(_DODGE_SEP_RE.sub('.', match.group(1)))} "


def _leet_sub(match: re.Match[str]) -> str:
    run = match.group()
    core = run.rstrip("!")
    if not _HAS_LETTER_RE.search(core):
        return run
    return core.translate(_LEET_TABLE) + run[len(core) :]


def _spaced_sub(match: re.Match[str]) -> str:
    return _SPACED_SEP_RE.sub("", match.group())


def normalize(text: str) -> str:
    """Return a canonical lower-case form of ``text`` for matching and features."""
    if not text:
        return ""
    if "<" in text:
        text = _HTML_TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if text.isascii():
        if _CONTROL_RE.search(text):
            text = text.translate(_CONTROL_TABLE)
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text).casefold()
        text = unicodedata.normalize("NFKD", text).translate(_UNICODE_TABLE)
        text = text.translate(_CONTROL_TABLE)
        # Homoglyph replacement can produce new sequences that NFKC would merge.
        text = unicodedata.normalize("NFKC", text)
    # Each step is guarded by a cheap test, so ordinary text pays almost nothing.
    if "@" in text:
        text = _EMAIL_RE.sub(_email_sub, text)
        text = _MENTION_RE.sub(f" {MENTION_TOKEN} ", text)
    if "://" in text or "www." in text:
        text = _URL_RE.sub(_url_sub, text)
    if _TLD_HINT_RE.search(text):
        text = _BARE_DOMAIN_RE.sub(_url_sub, text)
    if _DODGE_HINT_RE.search(text):
        text = _DODGED_DOMAIN_RE.sub(_dodged_url_sub, text)
    if _PHONE_HINT_RE.search(text):
        text = _PHONE_RE.sub(f" {PHONE_TOKEN} ", text)
    text = _SPACED_RE.sub(_spaced_sub, text)
    text = _LEET_RUN_RE.sub(_leet_sub, text)
    if _REPEAT_HINT_RE.search(text):
        text = _REPEAT_RE.sub(r"\1", text)
    return " ".join(text.split())
