"""Many users at once: text and translation throughput and per-user latency through a real app process.

    python benchmarks/serving.py                          # 1, 4, 16 and 32 users, 10 s per phase
    python benchmarks/serving.py --users 1,16 --seconds 6 --checkpoints checkpoints

It starts the app (`python -m playground`, the shipped checkpoints, GRADIO_ANALYTICS_ENABLED=False) on a free port
of 127.0.0.1, waits until its log says every model is loaded and warmed up, runs 32 text users at once and a few
translations untimed, then for each number of users runs every user in a thread of its own, with a gradio_client
Client of its own, making requests back to back for `--seconds`:

- text: `/generate_text`, LENGTH characters at temperature 0.8, a seed per request. **Aggregate characters/s** is
  the characters of every update received during the phase over its length. **Per-user latency per chunk** is
  the time a user waits for each update of its text: from the request to the first chunk, then from one chunk to
  the next (the page gets one update per compiled chunk of 64 characters; the last one adds the confidence view).
- translate: `/translate`, greedy, sentences taken in turn. **Translations/s** over the phase, and the latency of
  each request (from the call to the answer).

It prints the CPU, the load average before and after (the machine may be shared), and one table with the ratios
to one user: the goals of issue 15 are >= 8x the aggregate text throughput at 16 users than at 1, and a p95
per-user latency at 16 users < 2x that at 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from playground.app import WARM_MESSAGE  # noqa: E402
from tests.conftest import start_app, stop_app  # noqa: E402  (the same app launcher the tests use)

PROMPT = "Ham.\nTo be, or not to be"
LENGTH = 640  # ten chunks
SENTENCES = ["No se pudo abrir el archivo.", "¿Puedes ayudarme?", "Mañana vamos a la playa.",
             "El gato duerme en la cama.", "¿Dónde está la estación de tren?", "Me gusta leer libros.",
             "Y habló Dios á Noé diciendo:", "Guarde el documento antes de salir."]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))] if ordered else float("nan")


def text_user(url: str, user: int, stop_at: float, record: dict) -> None:
    """One user: text requests back to back until `stop_at`, recording (arrival time, characters) of each update
    and the wait before it."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    request = 0
    while time.monotonic() < stop_at:
        started = last = time.monotonic()
        written = len(PROMPT)
        job = client.submit(PROMPT, LENGTH, 0.8, 0, 1.0, user * 1000 + request, api_name="/generate_text")
        for output in job:
            now = time.monotonic()
            text = output[0]
            if len(text) > written:
                record["updates"].append((now, len(text) - written))
                record["waits"].append(now - last)
                written, last = len(text), now
        if written != len(PROMPT) + LENGTH:
            record["short"] += 1
        record["requests"].append(time.monotonic() - started)
        request += 1


def translate_user(url: str, user: int, stop_at: float, record: dict) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    request = 0
    while time.monotonic() < stop_at:
        started = time.monotonic()
        client.predict(SENTENCES[(user + request) % len(SENTENCES)], "Greedy", 5, 0.8, 0, api_name="/translate")
        record["done"].append((time.monotonic(), time.monotonic() - started))
        request += 1


def phase(worker, url: str, users: int, seconds: float, record_factory) -> tuple[dict, float, float]:
    """Runs `users` threads of `worker` for `seconds`; returns the merged record and the measured window."""
    records = [record_factory() for _ in range(users)]
    started = time.monotonic()
    stop_at = started + seconds
    threads = [threading.Thread(target=worker, args=(url, user, stop_at, records[user])) for user in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = {key: (sum(record[key] for record in records) if isinstance(records[0][key], int)
                    else [item for record in records for item in record[key]]) for key in records[0]}
    return merged, started, stop_at


def text_record() -> dict:
    return {"updates": [], "waits": [], "requests": [], "short": 0}


def translate_record() -> dict:
    return {"done": []}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,4,16,32", help="numbers of concurrent users, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--skip-translate", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.users.split(",")]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_app(Path(args.checkpoints), Path(folder) / "app.log")
        try:
            deadline = time.monotonic() + 600
            while WARM_MESSAGE not in (Path(folder) / "app.log").read_text() and time.monotonic() < deadline:
                time.sleep(1)  # the app loads and compiles every model in the background first
            print("warming up (32 text users at once, then translations)...", flush=True)
            phase(text_user, url, 32, 1.0, text_record)
            phase(translate_user, url, 4, 2.0, translate_record)
            rows = []
            for users in counts:
                record, started, stop_at = phase(text_user, url, users, args.seconds, text_record)
                inside = sum(count for when, count in record["updates"] if started <= when <= stop_at)
                rows.append(("text", users, inside / (stop_at - started), record["waits"], record["short"]))
                print(f"text, {users} users: {rows[-1][2]:,.0f} chars/s, per-chunk wait p50 "
                      f"{percentile(record['waits'], 0.5) * 1000:.0f} ms, p95 {percentile(record['waits'], 0.95) * 1000:.0f} ms",
                      flush=True)
            if not args.skip_translate:
                for users in counts:
                    record, started, stop_at = phase(translate_user, url, users, args.seconds, translate_record)
                    done = [latency for when, latency in record["done"] if when <= stop_at]
                    rows.append(("translate", users, len(done) / (stop_at - started),
                                 [latency for _, latency in record["done"]], 0))
                    print(f"translate, {users} users: {rows[-1][2]:.1f} translations/s", flush=True)
        finally:
            stop_app(process)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| endpoint | users | throughput | vs 1 user | p50 latency | p95 latency | p95 vs 1 user |")
    print("|---|---|---|---|---|---|---|")
    base: dict[str, tuple[float, float]] = {}
    for endpoint, users, rate, latencies, short in rows:
        p50, p95 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000
        base.setdefault(endpoint, (rate, p95))
        unit = "chars/s" if endpoint == "text" else "translations/s"
        note = f" ({short} short answers)" if short else ""
        print(f"| {endpoint} | {users} | {rate:,.1f} {unit}{note} | {rate / base[endpoint][0]:.2f}x | {p50:.0f} ms | "
              f"{p95:.0f} ms | {p95 / base[endpoint][1]:.2f}x |")
    text_rows = {users: (rate, percentile(latencies, 0.95)) for endpoint, users, rate, latencies, _ in rows
                 if endpoint == "text"}
    if 1 in text_rows and 16 in text_rows:
        throughput = text_rows[16][0] / text_rows[1][0]
        latency = text_rows[16][1] / text_rows[1][1]
        print(f"\ntext at 16 users vs 1: throughput {throughput:.2f}x (goal >= 8x: {'met' if throughput >= 8 else 'NOT met'}), "
              f"p95 per-chunk wait {latency:.2f}x (goal < 2x: {'met' if latency < 2 else 'NOT met'})")
    print("Text latency is per chunk (the wait for each update of a stream, the first from the request); "
          "translate latency is per request.")


if __name__ == "__main__":
    main()
