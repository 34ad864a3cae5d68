"""Language detection behind the `LanguageDetector` port: py3langid (langid.py's naive Bayes
model over byte n-grams; the model ships inside the package, nothing is downloaded).

    detector = LangidDetector()
    detector.detect(["Merci pour cet article.", "lol"])   # [Language("fr", True, 0.99),
                                                         #  Language("und", True, 0.03)]
    detector.language_of(text, lang)                     # ("fr", True): (code, detected)
    language_of(any_detector, text, lang)                # the same, for any LanguageDetector

`language_of` is for callers with one text and maybe the sender's language tag (e.g. an
endpoint that takes Perspective-style requests): a usable `lang` wins over detection. The
service's detector is `bootstrap.Components.language` (built once: loading costs 0.5 s).

Two choices keep short English comments from being called something else, measured on the
English comments of `classifier/data` (`python bench/bench_language.py`, BENCHMARKS.md):
- the candidates are the widely written languages below, not langid's 97 (which include
  English-like Nigerian Pidgin, Scots-like varieties, Latin, Volapük): closely related
  minor varieties no longer split the probability of the major one, and English slang is
  not taken for Pidgin;
- a verdict below `min_confidence` (langid's normalised probability) is `und`: the
  language could not be told, and the policy treats that as supported (scored as today).
Only the first `max_chars` characters are read: the cost is linear in length, and a
language shows in its first sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from service.domain.language import given_language
from service.domain.model import UNDETERMINED, Language
from service.usecases.ports import LanguageDetector

# Widely written languages (ISO 639-1) that langid knows.
# fmt: off
CANDIDATES: Final = (
    "af", "am", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "es",
    "et", "eu", "fa", "fi", "fr", "ga", "gl", "gu", "he", "hi", "hr", "hu", "hy", "id", "is", "it",
    "ja", "ka", "kk", "km", "kn", "ko", "lt", "lv", "mk", "ml", "mn", "mr", "ms", "my", "ne", "nl",
    "no", "pa", "pl", "ps", "pt", "ro", "ru", "si", "sk", "sl", "sq", "sr", "sv", "sw", "ta", "te",
    "th", "tl", "tr", "uk", "ur", "uz", "vi", "zh",
)
# fmt: on
MIN_CONFIDENCE: Final = 0.8
MAX_CHARS: Final = 500
_NO_LANGUAGE: Final = "zxx"  # langid's "no linguistic content" (digits, emoji, links)


class LangidDetector:
    """Thread-safe once built (scoring reads the model only). Building it loads the model:
    about 0.5 s and 90 MB."""

    def __init__(
        self,
        *,
        candidates: Sequence[str] = CANDIDATES,
        min_confidence: float = MIN_CONFIDENCE,
        max_chars: int = MAX_CHARS,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be from 0 to 1, got {min_confidence}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(list(candidates))  # ValueError names a code langid lacks
        self._identifier = identifier
        self._min_confidence = min_confidence
        self._max_chars = max_chars

    def detect(self, texts: Sequence[str]) -> list[Language]:
        """The language of each text, `und` where it cannot be told with confidence."""
        return [self._detect(text) for text in texts]

    def language(self, text: str, lang: str | None = None) -> Language:
        """The sender's `lang` if it is a usable language tag, else the detected language."""
        return language(self, text, lang)

    def language_of(self, text: str, lang: str | None = None) -> tuple[str, bool]:
        """(ISO 639 code or `und`, whether it was detected rather than given)."""
        return language_of(self, text, lang)

    def _detect(self, text: str) -> Language:
        code, confidence = self._identifier.classify(text[: self._max_chars])
        probability = round(float(confidence), 4)
        if code == _NO_LANGUAGE or probability < self._min_confidence:
            return Language(UNDETERMINED, detected=True, confidence=probability)
        return Language(str(code), detected=True, confidence=probability)


def language(detector: LanguageDetector, text: str, lang: str | None = None) -> Language:
    """The sender's `lang` if it is a usable language tag, else the detector's verdict."""
    return given_language(lang) or detector.detect([text])[0]


def language_of(detector: LanguageDetector, text: str, lang: str | None = None) -> tuple[str, bool]:
    """(ISO 639 code or `und`, whether it was detected rather than given)."""
    found = language(detector, text, lang)
    return found.code, found.detected
