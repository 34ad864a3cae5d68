from __future__ import annotations

import pytest

from classifier import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("You are an 1D10T", "you are an idiot"),
        ("Buy $pam here", "buy spam here"),
        ("what a sh!t idea", "what a shit idea"),
        ("f u c k you", "fuck you"),
        ("f.u.c.k off", "fuck off"),
        ("stuuuuupid", "stupid"),
        ("\uff53\uff54\uff55\uff50\uff49\uff44", "stupid"),  # fullwidth (NFKC)
        ("\U0001d42c\U0001d42d\U0001d42e\U0001d429\U0001d422\U0001d41d", "stupid"),  # math bold
        ("\u0456d\u0456\u043et", "idiot"),  # Cyrillic \u0456 and \u043e
        ("\u03b9d\u03b9\u03bft", "idiot"),  # Greek iota and omicron
        ("id\u200biot", "idiot"),  # zero-width space
        ("id\u00adi\u200dot", "idiot"),  # soft hyphen, zero-width joiner
        ("i\x00d\x07iot", "idiot"),  # control characters
        ("IDIOT", "idiot"),
        ("Stra\u00dfe", "strasse"),  # case folding
        ("ca\u0301fe\u0301 z\u0337a\u0337l\u0337g\u0337o\u0337", "cafe zalgo"),
        ("<p>Hello <b>world</b></p>", "hello world"),
        ("fish &amp; chips", "fish & chips"),
        ("a   lot\n\tof  space", "a lot of space"),
    ],
)
def test_normalize_undoes_evasion(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_urls_become_a_token_with_their_domain() -> None:
    out = normalize("see https://www.Example.co.uk/path?q=1 and http://spam.biz/x now")
    assert out == "see _url_ co_uk and _url_ spam_biz now"
    assert normalize("go to bit.ly/abc123") == "go to _url_ bit_ly"
    assert normalize("www.evil-site.com") == "_url_ evil-site_com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("visit marketglory . com/strategygame/x now", "visit _url_ marketglory_com now"),
        ("Paul DOT com", "_url_ paul_com"),
        ("example(dot)com", "_url_ example_com"),
        ("example [dot] net now", "_url_ example_net now"),
        ("example (.) biz", "_url_ example_biz"),
        ("kidsmediausa  . com", "_url_ kidsmediausa_com"),
        ("mtvema. com/vote", "_url_ mtvema_com"),
        ("spam .ru", "_url_ spam_ru"),
    ],
)
def test_domains_spelt_to_dodge_link_filters_become_urls(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "prose",
    [
        "tell me. in the end it is fine",
        "i said it. com",
        "dotted lines. neto",
        "this is a co . operative",
        "the . or the ,",
    ],
)
def test_sentences_are_not_taken_for_dodged_domains(prose: str) -> None:
    assert normalize(prose) == prose


def test_emails_phones_and_mentions_become_tokens() -> None:
    assert normalize("mail bob.smith@Gmail.com") == "mail _email_ gmail_com"
    assert normalize("call 09061701461 now") == "call _phone_ now"
    assert normalize("call +44 (0)20 7946 0958") == "call _phone_"
    assert normalize("@someone you fool") == "_mention_ you fool"


def test_plain_numbers_and_prices_are_left_alone() -> None:
    assert normalize("In 2014 - 2015 we sold $50 worth, 18,300 times") == (
        "in 2014 - 2015 we sold $50 worth, 18,300 times"
    )
    assert normalize("1000 people") == "1000 people"


def test_ordinary_text_is_only_lower_cased() -> None:
    text = "The council's decision on the new bridge was, frankly, disappointing."
    assert normalize(text) == text.lower()


def test_punctuation_runs_are_squeezed_but_kept() -> None:
    assert normalize("idiot!!!!!") == "idiot!"
    assert normalize("really???") == "really?"


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "\x00\x01"])
def test_empty_and_invisible_input(text: str) -> None:
    assert normalize(text) == ""


def test_surrogates_and_garbage_do_not_crash() -> None:
    garbage = bytes(range(256)).decode("latin-1") + "\udc80\ud800" + "\U0010ffff"
    out = normalize(garbage * 10)
    assert isinstance(out, str)


def test_idempotent_on_a_normalised_text() -> None:
    once = normalize("Check http://x.com, y0u 1d10t!!! <i>f u c k</i> \u0455\u0440\u0430m")
    assert normalize(once) == once
