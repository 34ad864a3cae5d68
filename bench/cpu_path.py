"""The service's CPU path per comment, in one process, without Kafka or a broker:

    python -m bench.cpu_path --model DIR [--records N] [--batch 500] [--repeat 3]

decode -> normalise -> hash (`Pipeline.prepare`), the batch's history query, score ->
decide -> encode (`Pipeline.finish`), and the store's rows (`record_decisions` on a fresh
SQLite file), with the shipped model, the default (environment) policy and the comments
`bench/run_all.py` sends. Prints the round of `--repeat` that took the least CPU, in
microseconds per comment: wall time per stage, and the CPU time of the whole process (which
other jobs on a shared machine move less). Run it under py-spy to see where each stage goes:

    py-spy record --format raw --rate 250 -o cpu.txt -- python -m bench.cpu_path --model DIR
    python -m bench.pyspy_summary cpu.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.common import comment_event, realistic_texts
from service.adapters.sklearn_classifier import ModelClassifier
from service.adapters.sql.store import SqlReviewStore
from service.bootstrap import build
from service.contracts.codec import SourceRecord
from service.settings import Settings
from service.usecases.pipeline import Pipeline


def batches(records: int, batch: int) -> list[list[SourceRecord]]:
    texts = realistic_texts()
    rng = random.Random(1)
    start = datetime.now(UTC) - timedelta(minutes=5)
    out: list[list[SourceRecord]] = []
    for first in range(0, records, batch):
        out.append(
            [
                SourceRecord("comments", i % 4, i, None, *comment_event(texts, rng, f"c{i}", start))
                for i in range(first, min(first + batch, records))
            ]
        )
    return out


async def one_round(
    pipeline: Pipeline, store: SqlReviewStore, work: Sequence[Sequence[SourceRecord]]
) -> dict[str, float]:
    spent = dict.fromkeys(("prepare", "history", "finish", "store"), 0.0)
    cpu = time.process_time()
    for records in work:
        t0 = time.perf_counter()
        prepared = pipeline.prepare(records)
        t1 = time.perf_counter()
        activity = await store.activity(prepared.query(datetime.now(UTC)))
        t2 = time.perf_counter()
        outcome = pipeline.finish(prepared, activity)
        t3 = time.perf_counter()
        await store.record_decisions(outcome.stored)
        t4 = time.perf_counter()
        for name, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[name] += seconds
    spent["cpu"] = time.process_time() - cpu  # every thread's, the store's included
    return spent


async def run(model_dir: Path, records: int, batch: int, repeat: int) -> None:
    work = batches(records, batch)
    classifier = ModelClassifier.load(model_dir)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(repeat):
            store = SqlReviewStore.from_url(f"sqlite:///{tmp}/bench-{attempt}.db")
            await store.migrate()
            env = {"MODERATION_STATE_DIR": tmp, "MODERATION_MODEL_PATH": str(model_dir)}
            components = build(Settings.from_env(env), classifier, store)
            spent = await one_round(components.pipeline, store, work)
            await store.close()
            if not best or spent["cpu"] < best["cpu"]:
                best = spent
    cpu = best.pop("cpu")
    total = sum(best.values())
    print(f"{records} comments in batches of {batch}, best of {repeat}, model {model_dir}")
    for name, seconds in best.items():
        print(f"  {name:8} {seconds / records * 1e6:7.1f} us per comment")
    print(f"  {'total':8} {total / records * 1e6:7.1f} us per comment ({records / total:,.0f}/s)")
    print(f"  {'CPU':8} {cpu / records * 1e6:7.1f} us per comment (the process, all threads)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    asyncio.run(run(args.model, args.records, args.batch, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
