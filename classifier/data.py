"""Loading the labelled datasets under ``classifier/data`` into one flat list.

Every row becomes an :class:`Example` for exactly one label (``spam`` or ``abuse``),
tagged with the source it came from and whether it belongs to the held-out test split.
Official test splits are used where the dataset has one (OLID, TweetEval); elsewhere a
stable hash of the text puts 20 % of the rows in the test split, so the split does not
depend on the training seed and never leaks between runs.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from classifier.labels import ABUSE, SPAM

__all__ = [
    "ABUSE_SOURCES",
    "DEFAULT_DATA_DIR",
    "SPAM_SOURCES",
    "DataError",
    "Example",
    "OffensiveMapping",
    "data_fingerprint",
    "load_examples",
]

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
TEST_FRACTION = 0.2

YOUTUBE_VIDEOS = {
    "Youtube01-Psy.csv": "youtube_psy",
    "Youtube02-KatyPerry.csv": "youtube_katyperry",
    "Youtube03-LMFAO.csv": "youtube_lmfao",
    "Youtube04-Eminem.csv": "youtube_eminem",
}
SPAM_SOURCES = (*YOUTUBE_VIDEOS.values(), "sms")
CIVIL_SOURCE = "civil_comments"
ABUSE_SOURCES = (
    CIVIL_SOURCE,
    "davidson",
    "olid",
    "tweeteval_hate",
    "toxic_spans",
    "stormfront",
)
# The product's own domain: reader comments on news sites.
NEWS_SOURCES = frozenset({CIVIL_SOURCE, "toxic_spans"})
# Civil Comments' rater-fraction columns behind each abuse sub-score, in SUBSCORES order.
CIVIL_SUBSCORE_COLUMNS = ("severe_toxicity", "insult", "threat", "identity_attack", "obscene")
# News-site comments (ToxicSpans) reused as non-spam examples for the spam model:
# the only data from the product's own domain.  Not evaluated as a spam source.
NEWS_HAM_SOURCE = "news_ham"
NEWS_HAM_ROWS = 1000


class DataError(Exception):
    """The data directory is missing a file or a file has an unexpected layout."""


class OffensiveMapping(Enum):
    """What to do with Davidson's "offensive language" (neither hate nor clean) class."""

    ABUSE = "abuse"
    CLEAN = "clean"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str  # which task this row is labelled for: SPAM or ABUSE
    y: int  # 1 = positive for `label`
    source: str
    test: bool
    # Rater fractions for the abuse sub-scores (SUBSCORES order), where the source has them.
    subscores: tuple[float, ...] | None = None


def _hash_test(source: str, text: str) -> bool:
    digest = hashlib.sha256(f"{source}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < TEST_FRACTION * 2**32


def _read_csv(path: Path, delimiter: str = ",") -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh, delimiter=delimiter)


def _require(row: dict[str, str], path: Path, *columns: str) -> list[str]:
    try:
        return [row[c] for c in columns]
    except KeyError as exc:
        raise DataError(f"{path}: missing column {exc}") from exc


def _youtube(root: Path) -> Iterator[Example]:
    for name, source in YOUTUBE_VIDEOS.items():
        path = root / "spam" / "youtube" / name
        for row in _read_csv(path):
            text, cls = _require(row, path, "CONTENT", "CLASS")
            yield Example(text, SPAM, int(cls), source, _hash_test(source, text))


def _sms(root: Path) -> Iterator[Example]:
    path = root / "spam" / "sms_spam_collection.tsv"
    with path.open(encoding="utf-8") as fh:
        header = fh.readline()
        if not header.startswith("Label\t"):
            raise DataError(f"{path}: unexpected header {header!r}")
        for line in fh:
            label, _, text = line.rstrip("\n").partition("\t")
            if label in ("spam", "ham"):
                yield Example(text, SPAM, int(label == "spam"), "sms", _hash_test("sms", text))


def _davidson(root: Path, offensive: OffensiveMapping) -> Iterator[Example]:
    path = root / "abuse" / "davidson_labeled_data.csv"
    for row in _read_csv(path):
        text, cls = _require(row, path, "tweet", "class")
        if cls == "1":
            if offensive is OffensiveMapping.DROP:
                continue
            y = int(offensive is OffensiveMapping.ABUSE)
        else:
            y = int(cls == "0")
        yield Example(text, ABUSE, y, "davidson", _hash_test("davidson", text))


def _olid(root: Path) -> Iterator[Example]:
    base = root / "abuse" / "olid"
    train = base / "olid-training-v1.0.tsv"
    for row in _read_csv(train, "\t"):
        text, lab = _require(row, train, "tweet", "subtask_a")
        yield Example(text, ABUSE, int(lab == "OFF"), "olid", test=False)
    labels_path = base / "labels-levela.csv"
    if not labels_path.is_file():
        raise DataError(f"missing data file {labels_path}")
    with labels_path.open(encoding="utf-8") as fh:
        labels = dict(line.strip().split(",", 1) for line in fh if line.strip())
    test = base / "testset-levela.tsv"
    for row in _read_csv(test, "\t"):
        tid, text = _require(row, test, "id", "tweet")
        if tid in labels:
            yield Example(text, ABUSE, int(labels[tid] == "OFF"), "olid", test=True)


def _tweeteval(root: Path) -> Iterator[Example]:
    for split in ("train", "val", "test"):
        path = root / "abuse" / "tweeteval_hate" / f"{split}.csv"
        for row in _read_csv(path):
            text, lab = _require(row, path, "text", "label")
            yield Example(text, ABUSE, int(lab), "tweeteval_hate", split == "test")


def _toxic_spans_labelled(root: Path) -> Iterator[tuple[str, int]]:
    base = root / "abuse" / "toxic_spans"
    votes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ann = base / "data_annotations.csv"
    for row in _read_csv(ann):
        cid, not_toxic = _require(row, ann, "comment_id", "not toxic")
        votes[cid][int(not_toxic == "True")] += 1
    comments = base / "data_comments.csv"
    for row in _read_csv(comments):
        cid, text = _require(row, comments, "comment_id", "comment_text")
        toxic, clean = votes.get(cid, (0, 0))
        if toxic != clean:  # ties and unrated comments are dropped
            yield text, int(toxic > clean)


def _dedup_key(text: str) -> str:
    return " ".join(text.lower().split())


def _civil_comments(root: Path, exclude: set[str]) -> Iterator[Example]:
    """Civil Comments: ``toxicity >= 0.5`` is abuse; rows also in ``exclude`` (ToxicSpans,
    the same platform, by normalised text) are dropped so no text sits in two sources."""
    path = root / "abuse" / CIVIL_SOURCE / "civil_comments_sample.csv"
    seen: set[str] = set()
    for row in _read_csv(path):
        text, toxicity = _require(row, path, "text", "toxicity")
        key = _dedup_key(text)
        if not text.strip() or key in exclude or key in seen:
            continue
        seen.add(key)
        subs = _require(row, path, *CIVIL_SUBSCORE_COLUMNS)
        try:
            y = int(float(toxicity) >= 0.5)
            fractions = tuple(float(v) for v in subs) if all(subs) else None
        except ValueError as exc:
            raise DataError(f"{path}: unreadable rater fraction ({exc})") from exc
        yield Example(text, ABUSE, y, CIVIL_SOURCE, _hash_test(CIVIL_SOURCE, text), fractions)


def _stormfront(root: Path) -> Iterator[Example]:
    path = root / "abuse" / "stormfront_hate_sentences.csv"
    for row in _read_csv(path):
        text, lab = _require(row, path, "text", "label")
        if lab in ("hate", "noHate"):
            yield Example(text, ABUSE, int(lab == "hate"), "stormfront", _hash_test("sf", text))


def _subsample(rows: list[Example], limit: int | None, rng: np.random.Generator) -> list[Example]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = np.sort(rng.choice(len(rows), size=limit, replace=False))
    return [rows[i] for i in keep]


def load_examples(
    data_dir: Path = DEFAULT_DATA_DIR,
    *,
    max_per_source: int | None = None,
    seed: int = 0,
    offensive: OffensiveMapping = OffensiveMapping.DROP,
) -> list[Example]:
    """Read every dataset; optionally keep at most ``max_per_source`` rows per source."""
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    by_source: dict[str, list[Example]] = defaultdict(list)
    for ex in _all(data_dir, offensive):
        by_source[ex.source].append(ex)
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for source in sorted(by_source):
        out.extend(_subsample(by_source[source], max_per_source, rng))
    return out


def _all(root: Path, offensive: OffensiveMapping) -> Iterable[Example]:
    yield from _youtube(root)
    yield from _sms(root)
    yield from _davidson(root, offensive)
    yield from _olid(root)
    yield from _tweeteval(root)
    spans = list(_toxic_spans_labelled(root))
    for text, y in spans:
        yield Example(text, ABUSE, y, "toxic_spans", _hash_test("toxic_spans", text))
    # Clean news comments double as non-spam; only training rows, so the abuse
    # test split of ToxicSpans never enters any training set.
    ham = [t for t, y in spans if y == 0 and not _hash_test("toxic_spans", t)]
    for text in ham[:NEWS_HAM_ROWS]:
        yield Example(text, SPAM, 0, NEWS_HAM_SOURCE, test=False)
    yield from _stormfront(root)
    yield from _civil_comments(root, {_dedup_key(t) for t, _ in spans})


def data_fingerprint(data_dir: Path) -> str:
    """sha256 over the relative paths and bytes of every data file (licences excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(data_dir).as_posix()
        if rel.startswith("licenses/") or rel.endswith((".md", ".txt")):
            continue
        digest.update(rel.encode() + b"\x00")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\x00")
    return digest.hexdigest()


def summarize(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        key = "test" if ex.test else "train"
        counts[ex.source][f"{key}_{'pos' if ex.y else 'neg'}"] += 1
    return {s: dict(c) for s, c in sorted(counts.items())}


if __name__ == "__main__":  # pragma: no cover - manual inspection helper
    for source, c in summarize(load_examples()).items():
        sys.stdout.write(f"{source:20} {c}\n")
