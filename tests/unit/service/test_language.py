"""The language detector adapter: py3langid with the service's candidates and confidence cut."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from service.adapters.language import LangidDetector
from service.domain.model import Language
from service.domain.policy import LanguageRules

ROOT = Path(__file__).resolve().parents[3]
NEWS_COMMENTS = ROOT / "classifier" / "data" / "abuse" / "toxic_spans" / "data_comments.csv"
ENGLISH_ONLY = LanguageRules()

ENGLISH = (
    "Thanks for this article, very informative.",
    "I disagree with the mayor, but the reporting here is fair.",
    "You are an idiot and everyone here hates you.",
    "Great read, thanks.",
)
FOREIGN = (
    ("fr", "Je ne suis pas du tout d'accord avec cet article, le maire doit démissionner."),
    ("fr", "Merci pour cet article très intéressant."),
    ("de", "Ich stimme dem Autor überhaupt nicht zu, das ist doch nicht zu fassen."),
    ("es", "No estoy de acuerdo con el autor: los impuestos suben y nadie hace nada."),
)


@pytest.fixture(scope="module")
def detector() -> LangidDetector:
    return LangidDetector()


@pytest.mark.parametrize("text", ENGLISH)
def test_english_is_detected_as_english(detector: LangidDetector, text: str) -> None:
    [language] = detector.detect([text])

    assert (language.code, language.detected) == ("en", True)
    assert not ENGLISH_ONLY.unsupported(language)


@pytest.mark.parametrize(("code", "text"), FOREIGN)
def test_a_clear_french_german_or_spanish_comment_is_unsupported(
    detector: LangidDetector, code: str, text: str
) -> None:
    [language] = detector.detect([text])

    assert (language.code, language.detected) == (code, True)
    assert language.confidence is not None
    assert language.confidence >= 0.8
    assert ENGLISH_ONLY.unsupported(language)


@pytest.mark.parametrize(
    "text", ["lol", "+1", "ok", "First!", "🙂🙂", "12345", "https://x.example/a"]
)
def test_what_cannot_be_told_is_undetermined_and_counts_as_supported(
    detector: LangidDetector, text: str
) -> None:
    [language] = detector.detect([text])

    assert (language.code, language.detected) == ("und", True)
    assert not ENGLISH_ONLY.unsupported(language)


def test_a_batch_keeps_its_order(detector: LangidDetector) -> None:
    texts = [FOREIGN[0][1], ENGLISH[0], "lol", FOREIGN[2][1]]

    assert [lang.code for lang in detector.detect(texts)] == ["fr", "en", "und", "de"]
    assert detector.detect([]) == []


def test_the_given_lang_wins_over_detection(detector: LangidDetector) -> None:
    french = FOREIGN[0][1]

    assert detector.language_of(french, "en-GB") == ("en", False)
    assert detector.language(french, "EN") == Language("en", detected=False)
    assert detector.language_of(ENGLISH[0], "fr") == ("fr", False)
    # no usable tag: detected after all
    assert detector.language_of(french) == ("fr", True)
    assert detector.language_of(french, "French") == ("fr", True)
    assert detector.language_of(french, "und") == ("fr", True)


def test_only_the_first_characters_are_read(detector: LangidDetector) -> None:
    # a long comment costs no more than its first 500 characters: French ones here, then a
    # far longer English tail that is never read
    french = (FOREIGN[1][1] + " ") * 13
    text = french + ENGLISH[1] * 400

    assert len(french) > 500

    assert detector.language_of(text) == ("fr", True)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        LangidDetector(min_confidence=1.5)
    with pytest.raises(ValueError, match="max_chars"):
        LangidDetector(max_chars=0)
    with pytest.raises(ValueError, match="Unknown language code"):
        LangidDetector(candidates=["en", "klingon"])


def test_english_news_comments_are_almost_never_called_another_language(
    detector: LangidDetector,
) -> None:
    # every 4th of the ToxicSpans news comments (English): bench/bench_language.py measures
    # all of them and prints the cases
    with NEWS_COMMENTS.open(encoding="utf-8", newline="") as f:
        texts = [row["comment_text"] for row in csv.DictReader(f)][::4]
    languages = detector.detect(texts)
    unsupported = [
        (lang.code, text[:60])
        for lang, text in zip(languages, texts, strict=True)
        if ENGLISH_ONLY.unsupported(lang)
    ]

    assert len(texts) > 4000
    assert len(unsupported) <= len(texts) // 1000, unsupported
