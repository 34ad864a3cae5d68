"""Language detection: its cost per comment, how often English comments are called another
language, how often short French/German/Spanish ones are caught, and what it costs the
pipeline.

    python bench/bench_language.py [--model DIR] [--repeat 3]

English: every comment of three English datasets in classifier/data (ToxicSpans news comments,
the product's domain; the SMS Spam Collection; OLID tweets). A comment is "called
unsupported" when the detector names a language other than English (an `und` verdict is
scored as English would be, so it does not count). Foreign: 30 short news-style comments
written for this benchmark (below). Pipeline: `Pipeline.process_batch` on batches of 500
comment events, CPU only (no broker, no store), with the detector and the model of `--model`
(a tiny one is trained into a temporary directory if there is none): once with `lang` absent
(every comment detected) and once with `"lang": "en"` (none detected). BLAS thread pools are
limited to one thread, so the figures are per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - the thread settings must precede numpy's import
import csv  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.adapters.language import CANDIDATES, MAX_CHARS, MIN_CONFIDENCE, LangidDetector  # noqa: E402
from service.domain.policy import LanguageRules  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "classifier" / "data"
ENGLISH_ONLY = LanguageRules()
BATCH = 500

FOREIGN: dict[str, tuple[str, ...]] = {
    "fr": (
        "Je ne suis pas du tout d'accord avec cet article.",
        "Merci pour cet article très intéressant.",
        "Quel idiot, ce journaliste.",
        "C'est une honte, le maire doit démissionner.",
        "Encore un article qui ne dit rien de nouveau.",
        "Bravo pour ce reportage, enfin quelqu'un qui ose le dire !",
        "Les impôts augmentent encore et personne ne fait rien.",
        "Vous êtes tous des imbéciles.",
        "J'habite dans ce quartier depuis vingt ans et je n'ai jamais vu ça.",
        "Article intéressant mais un peu long.",
    ),
    "de": (
        "Ich stimme dem Autor überhaupt nicht zu.",
        "Danke für diesen guten Artikel.",
        "Was für ein Unsinn!",
        "Der Bürgermeister sollte zurücktreten.",
        "Endlich sagt es mal jemand.",
        "Das ist doch nicht zu fassen.",
        "Wieder so ein Artikel ohne jede Recherche.",
        "Ihr seid alle Idioten.",
        "Sehr interessant, vielen Dank.",
        "Die Steuern steigen und niemand tut etwas dagegen.",
    ),
    "es": (
        "No estoy de acuerdo con el autor.",
        "Gracias por este artículo tan interesante.",
        "¡Qué vergüenza!",
        "El alcalde debería dimitir ya.",
        "Por fin alguien lo dice.",
        "Otro artículo sin ninguna investigación.",
        "Sois todos unos idiotas.",
        "Muy interesante, muchas gracias.",
        "Los impuestos suben y nadie hace nada.",
        "Vivo en este barrio desde hace veinte años.",
    ),
}


def _column(path: Path, name: str, delimiter: str = ",") -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row[name] for row in csv.DictReader(f, delimiter=delimiter) if row[name]]


def english_sets() -> dict[str, list[str]]:
    return {
        "ToxicSpans news comments": _column(
            DATA / "abuse" / "toxic_spans" / "data_comments.csv", "comment_text"
        ),
        "SMS Spam Collection": _column(DATA / "spam" / "sms_spam_collection.tsv", "SMS", "\t"),
        "OLID tweets": _column(DATA / "abuse" / "olid" / "olid-training-v1.0.tsv", "tweet", "\t"),
    }


def best_seconds(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def detection(detector: LangidDetector, repeat: int) -> None:
    print(
        f"detector: py3langid, {len(CANDIDATES)} candidate languages, confidence cut "
        f"{MIN_CONFIDENCE}, first {MAX_CHARS} characters"
    )
    for name, texts in english_sets().items():
        seconds = best_seconds(repeat, partial(detector.detect, texts))
        languages = detector.detect(texts)
        called = [
            (lang.code, lang.confidence, text)
            for lang, text in zip(languages, texts, strict=True)
            if ENGLISH_ONLY.unsupported(lang)
        ]
        undetermined = sum(1 for lang in languages if not lang.determined)
        mean_chars = sum(len(t) for t in texts) / len(texts)
        print(
            f"  {name}: {len(texts):,} comments (mean {mean_chars:.0f} chars), "
            f"{seconds / len(texts) * 1e6:.0f} us per comment; called unsupported "
            f"{len(called)} ({len(called) / len(texts):.3%}); und {undetermined / len(texts):.1%}"
        )
        for code, confidence, text in called[:10]:
            print(f"      {code} {confidence}: {text[:90]!r}")
    caught = Counter[str]()
    for code, foreign in FOREIGN.items():
        for lang in detector.detect(foreign):
            caught[code] += ENGLISH_ONLY.unsupported(lang)
    total = sum(len(t) for t in FOREIGN.values())
    print(
        f"  short foreign comments called unsupported: {sum(caught.values())}/{total} "
        f"({', '.join(f'{c} {n}/{len(FOREIGN[c])}' for c, n in caught.items())}); the rest "
        "are und and scored"
    )


def pipeline_rate(detector: LangidDetector, model_dir: Path | None, repeat: int) -> None:
    from classifier import normalize  # noqa: PLC0415 - heavy; only here
    from service.adapters.sklearn_classifier import ModelClassifier  # noqa: PLC0415
    from service.bootstrap import SystemClock  # noqa: PLC0415
    from service.contracts.codec import Limits, SourceRecord  # noqa: PLC0415
    from service.domain.policy import Policy, Thresholds  # noqa: PLC0415
    from service.usecases.pipeline import Pipeline, Topics  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        if model_dir is None or not (model_dir / "model.json").exists():
            from tests.classifier_fixtures import train_tiny_model  # noqa: PLC0415

            model_dir = train_tiny_model(Path(tmp) / "model")
            print(f"pipeline: no model given, trained a tiny one into {model_dir}")
        model = ModelClassifier.load(model_dir)
        policy = Policy.simple("bench", Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))
        texts = english_sets()["ToxicSpans news comments"][: BATCH * 8]

        def batches(lang: str | None) -> list[list[SourceRecord]]:
            out = []
            for start in range(0, len(texts), BATCH):
                records = []
                for i, text in enumerate(texts[start : start + BATCH], start):
                    doc = {"id": f"c{i}", "site_id": "herald", "text": text}
                    if lang is not None:
                        doc["lang"] = lang
                    value = json.dumps(doc).encode()
                    records.append(SourceRecord("comments", 0, i, None, None, value))
                out.append(records)
            return out

        for label, detector_or_none, lang in (
            ("lang absent, detected", detector, None),
            ('"lang": "en" given', detector, "en"),
            ("no detector (before)", None, None),
        ):
            pipeline = Pipeline(
                model,
                policy,
                SystemClock(),
                Topics(),
                Limits(),
                normalize=normalize,
                language_detector=detector_or_none,
            )
            work = batches(lang)
            seconds = best_seconds(repeat, partial(_run_batches, pipeline, work))
            print(
                f"  pipeline.process_batch, {label}: {len(texts) / seconds:,.0f} comments/s "
                f"({seconds / len(texts) * 1e6:.0f} us per comment)"
            )


def _run_batches(pipeline: Any, work: Sequence[Sequence[Any]]) -> None:
    for batch in work:
        pipeline.process_batch(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / ".state" / "model")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    detector = LangidDetector()
    print(f"detector built in {time.perf_counter() - start:.2f} s")
    detection(detector, args.repeat)
    pipeline_rate(detector, args.model, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
