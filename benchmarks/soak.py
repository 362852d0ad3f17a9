"""Soak test: N concurrent API users drive the real app for M minutes; errors, latency, memory and temp disk.

    python benchmarks/soak.py                              # 16 users, 10 minutes, shipped checkpoints
    python benchmarks/soak.py --users 4 --minutes 1 --checkpoints /tmp/tiny   # what tests/test_soak.py runs
    python benchmarks/soak.py --json soak.json

It starts `python -m playground` on a free port with its own Gradio temp folder and runs folder, then each user
(a `gradio_client.Client` in a thread) loops over every serving endpoint: generate_text, generate_digits,
latent_walk, translate, caption, training_status. Half the users send the same inputs at the same moment
(identical requests race for the same cached output files), the other half draw their own. It reports, per
endpoint, requests, errors (with the first messages), p50 and p95 latency; and for the app (its process and
children) RSS and the temp folder's size at start (after one warm-up round) and end. The goal in
docs/reliability.md: 0 errors at 16 users for 10 minutes, RSS within +15% and temp disk within +50 MB of the start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import app_client  # noqa: E402  (one TLS context for every client: see there)
from tests.conftest import start_app, stop_app  # noqa: E402  (the same launcher the tests use)

SENTENCES = ["Y dijo Dios: sea la luz.", "El señor es mi pastor.", "Los niños comen pan en la casa.",
             "¿Dónde está la biblioteca?", "Mañana vamos a la playa con mis amigos."]
PROMPTS = ["Ham.\nTo be", "KING.\nMy lords, ", "O Romeo, ", "Enter "]


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under `folder`; a file the app's cache sweep deletes while it is counted counts 0."""
    total = 0
    for path in folder.rglob("*") if folder.exists() else []:
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            pass
    return total


def app_rss(pid: int) -> int:
    import psutil

    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    except psutil.Error:
        return 0


def picture(folder: Path, index: int) -> Path:
    """A small photo-like test picture (its own content for each index). Written whole under a name of this
    thread's and then renamed: two users sending the same picture at once once raced here, the second uploading the
    first one's half-written file (the app rightly answered that it was no picture)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(index)
    path = folder / f"picture_{index}.png"
    if not path.exists():
        base = rng.integers(0, 255, (3,), dtype=np.uint8)
        noise = rng.integers(0, 60, (240, 320, 3), dtype=np.uint8)
        partial = folder / f".picture_{index}.{threading.get_ident()}.png"
        Image.fromarray((base + noise).astype(np.uint8)).save(partial)
        os.replace(partial, path)
    return path


def requests_for(user: int, round_number: int, shared: bool, pictures: Path):
    """(endpoint, args) of one round; shared users send the same inputs as each other."""
    rng = random.Random(round_number if shared else user * 100003 + round_number)
    seed = rng.randrange(1000)
    return [
        ("generate_text", (rng.choice(PROMPTS), 60, 0.8, 0, 1.0, seed)),
        ("generate_digits", (seed, 16)),
        ("latent_walk", (seed, seed + 1, 8)),
        ("translate", (rng.choice(SENTENCES), "Beam search" if rng.random() < 0.5 else "Greedy", 3, 1.0, seed)),
        ("caption", ("picture", rng.randrange(4) if shared else rng.randrange(40))),
        ("training_status", (None,)),
    ]


def user_loop(user: int, url: str, deadline: float, shared: bool, pictures: Path, results: dict, lock,
              rounds: int = 0):
    """Rounds of every endpoint until `deadline` (or `rounds` rounds), timing each request into `results`."""
    from gradio_client import handle_file

    client = app_client(url)
    round_number = 0
    while time.monotonic() < deadline and not (rounds and round_number >= rounds):
        for endpoint, args in requests_for(user, round_number, shared, pictures):
            if endpoint == "caption":
                args = (handle_file(str(picture(pictures, args[1]))), 1)
            started = time.monotonic()
            error = None
            try:
                client.predict(*args, api_name=f"/{endpoint}")
            except Exception as problem:  # noqa: BLE001  (every failure counts, whatever its kind)
                error = f"{type(problem).__name__}: {str(problem)[:160]}"
            with lock:
                entry = results.setdefault(endpoint, {"latencies": [], "errors": []})
                entry["latencies"].append(time.monotonic() - started)
                if error:
                    entry["errors"].append(error)
            if time.monotonic() >= deadline:
                return
        round_number += 1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def soak(users: int, minutes: float, checkpoints: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    temp = work / "gradio-temp"
    temp.mkdir()
    pictures = work / "pictures"
    pictures.mkdir()
    # TMPDIR too: the app's own output files (playground/outputs.py) count as temp disk, beside Gradio's cache.
    process, url = start_app(checkpoints, work / "app.log", extra_env={"GRADIO_TEMP_DIR": str(temp),
                                                                      "TMPDIR": str(temp)})
    timeline: list = []
    try:
        lock = threading.Lock()
        idle_rss = app_rss(process.pid)
        # Warm-up: one round by every user at once, so every model is loaded and traced and every worker thread
        # has run once; the measured start is the app as it serves 16 users, growth after it is what accumulates.
        warm: dict = {}
        warmers = [threading.Thread(target=user_loop, args=(user, url, float("inf"), user % 2 == 0, pictures, warm,
                                                            lock, 1), daemon=True) for user in range(users)]
        for thread in warmers:
            thread.start()
        for thread in warmers:
            thread.join(timeout=600)
        start_rss, start_disk = app_rss(process.pid), folder_bytes(temp)
        results: dict = {}
        deadline = time.monotonic() + minutes * 60
        threads = [threading.Thread(target=user_loop, args=(user, url, deadline, user % 2 == 0, pictures, results,
                                                            lock), daemon=True) for user in range(users)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):  # a sample every 30 s shows whether both level off
            timeline.append((round(time.monotonic() - started), round(app_rss(process.pid) / 2**20, 1),
                             round(folder_bytes(temp) / 2**20, 1)))
            next_sample = time.monotonic() + 30
            while time.monotonic() < next_sample and any(thread.is_alive() for thread in threads):
                time.sleep(1)
        wall = time.monotonic() - started
        end_rss, end_disk = app_rss(process.pid), folder_bytes(temp)
        mid = min(timeline, key=lambda sample: abs(sample[0] - wall / 2))
        mid_rss, mid_disk = mid[1] * 2**20, mid[2] * 2**20
    finally:
        stop_app(process)
    endpoints = {name: {"requests": len(entry["latencies"]), "errors": len(entry["errors"]),
                        "first_errors": sorted(set(entry["errors"]))[:3],
                        "p50_seconds": round(statistics.median(entry["latencies"]), 3),
                        "p95_seconds": round(percentile(entry["latencies"], 0.95), 3)}
                 for name, entry in sorted(results.items())}
    return {"users": users, "minutes": minutes, "wall_seconds": round(wall, 1), "checkpoints": str(checkpoints),
            "requests": sum(e["requests"] for e in endpoints.values()),
            "errors": sum(e["errors"] for e in endpoints.values()), "endpoints": endpoints,
            "timeline": [{"seconds": t, "rss_mb": r, "temp_disk_mb": d} for t, r, d in timeline],
            "rss_mb": {"idle": round(idle_rss / 2**20, 1), "start": round(start_rss / 2**20, 1),
                       "half_time": round(mid_rss / 2**20, 1),
                       "end": round(end_rss / 2**20, 1)},
            "temp_disk_mb": {"start": round(start_disk / 2**20, 1), "half_time": round(mid_disk / 2**20, 1),
                             "end": round(end_disk / 2**20, 1)},
            "cpu": cpu_name()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--json", default="", help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.users < 1 or args.minutes <= 0:
        parser.error("--users must be at least 1 and --minutes above 0")
    report = soak(args.users, args.minutes, Path(args.checkpoints))
    print(f"{report['users']} users for {report['minutes']} min on {report['cpu']}: {report['requests']} requests, "
          f"{report['errors']} errors")
    print(f"{'endpoint':<16} {'requests':>8} {'errors':>6} {'p50 s':>7} {'p95 s':>7}")
    for name, entry in report["endpoints"].items():
        print(f"{name:<16} {entry['requests']:>8} {entry['errors']:>6} {entry['p50_seconds']:>7} "
              f"{entry['p95_seconds']:>7}")
        for message in entry["first_errors"]:
            print(f"    {message}")
    rss, disk = report["rss_mb"], report["temp_disk_mb"]
    print(f"app RSS {rss['start']} -> {rss['half_time']} (half-time) -> {rss['end']} MB; temp disk {disk['start']} -> "
          f"{disk['half_time']} -> {disk['end']} MB")
    print("timeline (s: RSS MB, temp MB): " + ", ".join(f"{sample['seconds']}: {sample['rss_mb']:.0f}, "
                                                        f"{sample['temp_disk_mb']:.0f}" for sample in report["timeline"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
