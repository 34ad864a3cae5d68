"""A comment's language as the event gives it. Pure: detection itself is an adapter's job
(the `LanguageDetector` port); the pipeline asks it only for comments without a usable `lang`."""

from __future__ import annotations

import re
from typing import Final

from service.domain.model import Language

# A BCP 47 tag as sites send it: a 2-3 letter primary subtag, then any subtags ("en",
# "en-GB", "pt_BR", "zh-Hant-TW"). Only the primary subtag is compared with a policy.
_TAG: Final = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")
# Tags that name no one language: undetermined, no linguistic content, multiple, uncoded.
_NOT_A_LANGUAGE: Final = frozenset({"und", "zxx", "mul", "mis"})


def given_language(lang: str | None) -> Language | None:
    """The event's `lang` as a `Language`, or None when there is none to go by: absent, not a
    BCP 47 tag (`"English"`, `"??"`), or a tag that names no one language (`"und"`)."""
    if lang is None:
        return None
    match = _TAG.fullmatch(lang.strip())
    if match is None:
        return None
    code = match.group(1).lower()
    if code in _NOT_A_LANGUAGE:
        return None
    return Language(code, detected=False)
