"""Review-file writers: ``write_review_set`` on 100,000 synthetic timeline entries, against a
baseline in the same process that writes the same entries' text to as many plain files.

No database: the input is built in memory as the bundle writer would hand it over (patients'
charts of ``--per-timeline`` entries, titled by name, a quarter of them lab results laid out as
the chart's lab table and the rest notes, a few withheld as privileged, some with a source time
and text in several scripts (Latin, Polish, Chinese), and ``--natives`` small native files
already in the staging folder).

    python bench/review.py                      # 100,000 entries, 3 alternating rounds
    python bench/review.py --entries 20000 --rounds 1
    python bench/review.py --profile            # cProfile one run of write_review_set
    python bench/review.py --dir /dev/shm       # in memory: the writers' CPU without the disk
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import NOTE_TEXT, header, median, profile_call

from legal_hold.review import write_review_set
from legal_hold.review.items import (
    Native,
    PrivilegeEntry,
    ReviewInput,
    Timeline,
    TimelineEntry,
)

LAB_COLUMNS = ("Test", "Value", "Unit", "Reference range", "Flag", "Collected", "Lab")
LAB_ROW = ("Potassium (LOINC 2823-3)", "4.1", "mmol/L", "3.5-5.1", "N", "20261102083000-0500",
           "Quest Łódź")  # fmt: skip
TARGET_SECONDS = 15.0  # for 100,000 entries, the review writers' share of a 60 s production
TEXTS = (
    NOTE_TEXT,
    "Potassium 4.1 mmol/L (ref 3.5-5.1).",
    "Patient reports dizziness since Tuesday; BP 142/90.\nAdvised fluids, recheck in 1 week.",
    "Café visit note — Zoë Ødegård, Łódź; 王小明 (interpreter); Müller.",
)


def review_input(entries: int, per_timeline: int, natives: tuple[Native, ...]) -> ReviewInput:
    timelines = []
    privileged = []
    position = 0
    while position < entries:
        rows = []
        for _ in range(min(per_timeline, entries - position)):
            withheld = "privileged" if position % 500 == 7 else None
            lab = position % 4 == 1  # a quarter are lab results: rows of the chart's lab table
            rows.append(
                TimelineEntry(
                    position=position,
                    recorded=f"2026-11-{1 + position % 28:02d}T09:{position % 60:02d}:05.123456Z",
                    original="Tue, 3 Nov 2026 08:30:00 -0500" if position % 7 == 0 else None,
                    actor="Dr. Ana Example",
                    kind="Lab result received" if lab else "Note signed",
                    text="" if withheld or lab else TEXTS[position % len(TEXTS)],
                    withheld=withheld,
                    section="Lab results" if lab else "Notes",
                    row=LAB_ROW if lab else (),
                )
            )
            if withheld:
                privileged.append(
                    PrivilegeEntry(
                        position,
                        "2026-11-02",
                        "Note",
                        "Dr. Ana Example",
                        ("Counsel",),
                        "Note to counsel requesting legal advice",
                        "attorney-client",
                        "ab" * 32,
                    )
                )
            position += 1
        number = len(timelines)
        rows.sort(key=lambda e: (e.section != "Lab results", e.position))  # sections in order
        timelines.append(
            Timeline(
                f"Chart — Zoë Ødegård (MRN {number:06d})",
                "Bench Clinic LLC",
                "chart",
                tuple(rows),
                header=(("Patient", "Zoë Ødegård"), ("MRN", f"{number:06d}"),
                        ("Date of birth", "1961-04-02"), ("Sex", "female")),
                columns=(("Lab results", LAB_COLUMNS),),
                reference=f"patient:{number:08d}-0000-4000-8000-000000000000",
            )
        )  # fmt: skip
    return ReviewInput(
        matter_name="Bench v. Clinic", matter_number="CV-26-001", forum="Superior Court",
        producing_party="Bench Clinic LLC", produced_at="2026-11-25T06:45:05.123456Z",
        bates_prefix="BENCH", checkpoint_size=entries, checkpoint_root="aa" * 32,
        checkpoint_key_id="bb" * 32, format_version="1", software_version="bench",
        timelines=tuple(timelines), natives=natives, privileged=tuple(privileged),
        event_count=entries, extra={"genesis_key_id": "cc" * 32},
    )  # fmt: skip


def stage_natives(root: Path, count: int) -> tuple[Native, ...]:
    (root / "natives").mkdir(parents=True)
    natives = []
    for i in range(count):
        path = f"natives/{i}.eml"
        data = f"From: a@example.org\r\nSubject: {i}\r\n\r\nHello\r\n".encode()
        (root / path).write_bytes(data)
        natives.append(
            Native(
                path,
                "0" * 64,
                f"{i}.eml",
                "message/rfc822",
                "user:bench",
                None,
                None,
                "Tue, 3 Nov 2026 08:30:00 -0500",
                "a@example.org",
                ("b@example.org",),
                (),
                f"Message {i}",
                i,
            )
        )
    return tuple(natives)


def baseline(root: Path, review: ReviewInput) -> None:
    """The same entries' text, one plain file per timeline, twice (as PDF and text file)."""
    out = root / "plain"
    out.mkdir()
    for number, timeline in enumerate(review.timelines):
        text = "".join(
            f"#{e.position}  {e.recorded}  {e.kind}  by {e.actor}\n{e.text}\n\n"
            for e in timeline.entries
        ).encode()
        for suffix in ("a", "b"):
            (out / f"{number}.{suffix}").write_bytes(text)


def _filesystem(path: Path) -> str:
    """The file system type holding ``path``, from /proc/mounts (longest mount point wins)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fs = line.split()[:3]
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fs
    except OSError:
        pass
    return kind


def timed(fn, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--per-timeline", type=int, default=20, help="entries per chart")
    parser.add_argument("--natives", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--dir", help="where to write (default: the system's temp folder); /dev/shm leaves out disk"
    )
    options = parser.parse_args()
    header("review files: write_review_set vs plain files")
    print(f"load:     {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min)")
    work = Path(tempfile.mkdtemp(prefix="bench-review-", dir=options.dir))
    print(f"folder:   {work} ({_filesystem(work)})")
    try:
        natives = stage_natives(work / "natives-src", options.natives)
        review = review_input(options.entries, options.per_timeline, natives)
        print(
            f"input:    {options.entries} entries in {len(review.timelines)} timelines, "
            f"{len(natives)} natives, {len(review.privileged)} privileged"
        )

        def fresh_root(tag: str) -> Path:
            root = work / tag
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(work / "natives-src", root)
            return root

        if options.profile:
            profile_call(write_review_set, fresh_root("profile"), review)
            return
        ours, plain, pages = [], [], 0
        for round_ in range(options.rounds):
            sides = [("plain", baseline), ("review", write_review_set)]
            for name, fn in sides if round_ % 2 == 0 else reversed(sides):
                root = fresh_root(name)
                wall, cpu = timed(fn, root, review)
                (ours if name == "review" else plain).append((wall, cpu))
                print(f"round {round_ + 1}: {name:<7} {wall:7.2f} s wall {cpu:7.2f} s cpu")
                if name == "review":
                    opt = (root / "loadfiles" / "production.opt").read_bytes()
                    pages = opt.count(b"\r\n")
                shutil.rmtree(root)
        wall = median([w for w, _ in ours])
        cpu = median([c for _, c in ours])
        base = median([w for w, _ in plain])
        print(
            f"review:   {wall:.2f} s wall (median), {cpu:.2f} s cpu, {pages} pages, "
            f"{pages / wall:,.0f} pages/s, {options.entries / wall:,.0f} entries/s"
        )
        print(f"plain:    {base:.2f} s wall (median); review / plain = {wall / base:.1f}x")
        if options.entries >= 100_000:
            verdict = "meets" if wall < TARGET_SECONDS else "MISSES"
            print(
                f"target:   < {TARGET_SECONDS:.0f} s for 100,000 entries: {wall:.1f} s, {verdict}"
            )
        else:
            print(
                f"target:   < {TARGET_SECONDS:.0f} s, for 100,000 entries (run without --entries)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
