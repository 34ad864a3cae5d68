"""Every benchmark, side by side in one run, on the real local stack; prints one table.

    python bench/run_all.py [--model DIR] [--records N] [--skip SECTION ...] [--profile]

Needs the local broker on 127.0.0.1:9092 (`make kafka-up`) and kcat; starts PostgreSQL with
deploy/postgres/pg.sh unless MODERATION_TEST_DATABASE_URL names one. Trains the model into
DIR first if there is none. Topics, databases and processes it creates are removed at the end.
Sections: broker, passthrough, service, latency, classifier, api.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from bench import pipeline_bench as pb
from bench.common import (
    PYTHON,
    ROOT,
    Databases,
    Topics,
    end_offsets,
    poll_until,
    postgres_admin_url,
)

SECTIONS = ("broker", "passthrough", "service", "latency", "classifier", "api")


@dataclass
class Table:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, what: str, value: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((what, value, target, verdict))
        print(f"  {what}: {value}" + (f"  [{verdict} {target}]" if target else ""), flush=True)

    def render(self) -> str:
        head = ("measure", "value", "target", "met")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(4)]
        lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines += [
            "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in self.rows
        ]
        return "\n".join(lines)


async def broker_up() -> bool:
    try:
        await end_offsets("__consumer_offsets")
    except Exception:
        return False
    return True


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    kcat = subprocess.run(["kcat", "-V"], capture_output=True, timeout=10, check=False)
    kcat_version = kcat.stdout.decode().splitlines()[0] if kcat.stdout else "kcat ?"
    return (
        f"{os.cpu_count()} cores ({cpu}), {int(mem) / 1024 / 1024:.1f} GB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, {kcat_version}; "
        "broker, database and load generators on the same machine"
    )


def ensure_model(model: Path) -> None:
    if (model / "model.json").is_file():
        return
    print(f"no model at {model}: training one (full data, ~30 s)", flush=True)
    subprocess.run(
        [PYTHON, "-m", "classifier", "train", "--out", str(model)],
        cwd=ROOT,
        check=True,
        timeout=600,
    )


def classifier_section(table: Table, model: Path, seconds: float) -> None:
    """bench/bench_classifier.py as it is, in its own process; its batch figures parsed."""
    out = subprocess.run(
        [
            *(PYTHON, str(ROOT / "bench" / "bench_classifier.py")),
            *("--model", str(model), "--seconds", str(seconds)),
        ],
        cwd=ROOT,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    ).stdout
    print("  " + out.strip().replace("\n", "\n  "), flush=True)
    for batch, rate in re.findall(r"^\s+batch\s+(\d+)\s+([\d,]+)$", out, re.MULTILINE):
        value = float(rate.replace(",", ""))
        if batch == "256":
            table.add(
                "classifier, batch 256 (comments/s per core)",
                f"{value:,.0f}",
                ">= 10,000",
                verdict(value >= 10_000),
            )
        else:
            table.add(f"classifier, batch {batch} (comments/s per core)", f"{value:,.0f}")


async def kafka_sections(
    args: argparse.Namespace, table: Table, workdir: Path, databases: Databases | None
) -> None:
    topics = Topics()
    try:
        await poll_until(broker_up, 90, "the broker on 127.0.0.1:9092", every=1.0)
    except TimeoutError as exc:
        raise SystemExit(f"{exc}: run `make kafka-up`") from exc
    try:
        await _kafka_sections(args, table, workdir, databases, topics)
    finally:
        await topics.delete_all()


async def _kafka_sections(
    args: argparse.Namespace,
    table: Table,
    workdir: Path,
    databases: Databases | None,
    topics: Topics,
) -> None:
    wanted = set(SECTIONS) - set(args.skip)
    if wanted & {"broker", "passthrough", "service"}:
        print(f"\n== pre-filling a topic with {args.records:,} comments (kcat)", flush=True)
        fill = await pb.prefill(topics, args.records, workdir)
        table.add("comments: mean JSON size (bytes)", f"{fill.mean_value_bytes:,.0f}")
        table.add("broker: kcat produce (messages/s)", f"{fill.produce_rate:,.0f}")
        table.add("broker: kcat consume (messages/s)", f"{fill.consume_rate:,.0f}")
        passthrough: dict[int, float] = {}
        passthrough_cpu: dict[int, float] = {}
        if "passthrough" in wanted:
            print("\n== transport limit: bare transactional passthrough", flush=True)
            for n in (1, 2):
                drain = await pb.passthrough(topics, fill, n, workdir)
                passthrough[n] = drain.steady_rate
                passthrough_cpu[n] = drain.cpu_per_record
                table.add(
                    f"passthrough, {n} process{'es' if n > 1 else ''} (comments/s)",
                    f"{drain.steady_rate:,.0f} (wall incl. start {drain.overall_rate:,.0f}); "
                    f"CPU {drain.cpu_per_record * 1e6:,.0f} us per comment",
                )
        if "service" in wanted:
            print("\n== the service: drain the pre-filled topic", flush=True)
            await service_section(
                args,
                table,
                workdir,
                databases=databases,
                topics=topics,
                fill=fill,
                passthrough=passthrough,
                passthrough_cpu=passthrough_cpu,
            )
    if "latency" in wanted:
        print("\n== latency under load (one process, SQLite)", flush=True)
        rows = await pb.latency(
            topics,
            rates=args.rates,
            seconds=args.latency_seconds,
            model=args.model,
            database_url=f"sqlite:///{workdir / 'latency.db'}",
            workdir=workdir,
        )
        for row in rows:
            p50, p95, p99, top = (v * 1000 for v in row.decided)
            v50, v95, v99, _ = (v * 1000 for v in row.visible)
            target = row.offered == 1000
            table.add(
                f"latency at {row.offered:,.0f}/s offered ({row.achieved:,.0f}/s sent), "
                "created_at -> decided_at p50/p95/p99 (ms)",
                f"{p50:,.0f} / {p95:,.0f} / {p99:,.0f} (max {top:,.0f})",
                "p99 < 100 ms" if target else "",
                verdict(p99 < 100) if target else "",
            )
            table.add(
                f"latency at {row.offered:,.0f}/s, created_at -> read_committed reader "
                "p50/p95/p99 (ms)",
                f"{v50:,.0f} / {v95:,.0f} / {v99:,.0f}",
            )


async def service_section(
    args: argparse.Namespace,
    table: Table,
    workdir: Path,
    *,
    databases: Databases | None,
    topics: Topics,
    fill: pb.Fill,
    passthrough: dict[int, float],
    passthrough_cpu: dict[int, float],
) -> None:
    # (processes, store, workers per process): `serve --workers 2` beside one process
    runs: list[tuple[int, str, int]] = [
        (1, "sqlite", 1),
        (1, "sqlite", 2),
        (2, "postgresql", 1),
        (1, "postgresql", 1),
    ]
    if databases is None:
        runs = [(1, "sqlite", 1), (1, "sqlite", 2), (2, "sqlite", 1)]
    single: float | None = None
    for processes, store, workers in runs:
        if store == "sqlite":
            url = f"sqlite:///{workdir / f'store-{processes}-{workers}-{time.monotonic_ns()}.db'}"
        else:
            assert databases is not None
            url = databases.create(f"svc{processes}")
        run = await pb.service_throughput(
            topics,
            fill,
            processes=processes,
            model=args.model,
            database_url=url,
            workdir=workdir,
            profile=args.profile,
            workers=workers,
        )
        rate = run.drain.steady_rate
        label = f"service, {processes} process{'es' if processes > 1 else ''}, {store}"
        if workers > 1:
            label = f"service, serve --workers {workers}, {store}"
        base = passthrough.get(1)
        ratio = f"; {rate / base:.0%} of the 1-process passthrough" if base else ""
        if (processes, store, workers) == (1, "sqlite", 1):
            single = rate
        elif workers > 1 and single:
            ratio += f"; {rate / single:.2f}x one process"
        cpu = run.drain.cpu_per_record
        base_cpu = passthrough_cpu.get(1)
        cpu_ratio = (
            f", {cpu / base_cpu:.1f}x the 1-process passthrough's {base_cpu * 1e6:,.0f} us"
            if base_cpu
            else ""
        )
        table.add(
            f"{label} (comments/s)",
            f"{rate:,.0f} (wall incl. start {run.drain.overall_rate:,.0f}){ratio}; "
            f"CPU {cpu * 1e6:,.0f} us per comment{cpu_ratio}",
            ">= 5,000 and >= 50% of passthrough" if processes == 2 else "",
            verdict(rate >= 5_000 and base is not None and rate >= base / 2)
            if processes == 2
            else "",
        )
        peak = max(run.peak_rss_mb)
        table.add(
            f"{label}: peak RSS per process (MB, VmHWM)",
            " / ".join(f"{m:,.0f}" for m in run.peak_rss_mb),
            "< 400 MB",
            verdict(peak < 400),
        )
        if run.profile is not None:
            print(f"  py-spy profile of process 0: {run.profile}", flush=True)


def main(argv: list[str] | None = None) -> int:
    state = Path(os.environ.get("MODERATION_STATE_DIR", ROOT / ".state"))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=state / "model")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=[200, 1000, 3000]
    )
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--classifier-seconds", type=float, default=2.0)
    parser.add_argument("--api-seconds", type=float, default=8.0)
    parser.add_argument("--api-items", type=int, default=100_000)
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[])
    parser.add_argument("--profile", action="store_true", help="py-spy the service runs")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--service-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a MODERATION_* setting for the service processes, e.g. BATCH_MAX_RECORDS=2000",
    )
    args = parser.parse_args(argv)
    args.model = args.model.resolve()
    for setting in args.service_setting:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            parser.error(f"--service-setting wants NAME=VALUE, got {setting!r}")
        pb.SERVICE_SETTINGS[f"MODERATION_{name.removeprefix('MODERATION_')}"] = value
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries while a broker restarts
    started = time.monotonic()
    table = Table()
    print(f"machine: {machine()}", flush=True)
    ensure_model(args.model)
    workdir = Path(tempfile.mkdtemp(prefix="moderation-bench-"))
    needs_pg = "service" not in args.skip or "api" not in args.skip
    databases = Databases(postgres_admin_url()) if needs_pg else None
    try:
        if "classifier" not in args.skip:
            print("\n== classifier alone (bench/bench_classifier.py)", flush=True)
            classifier_section(table, args.model, args.classifier_seconds)
        asyncio.run(kafka_sections(args, table, workdir, databases))
        if "api" not in args.skip:
            from bench import review_api  # noqa: PLC0415

            print("\n== review API", flush=True)
            review_api.section(table, databases, workdir, args.api_items, args.api_seconds)
    finally:
        if databases is not None:
            databases.drop_all()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmachine: {machine()}")
    print(f"command: python bench/run_all.py {' '.join(argv or sys.argv[1:])}".rstrip())
    print(f"took {time.monotonic() - started:.0f} s\n")
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
