"""Many users at once: text and translation throughput and per-user latency through a real app process.

    python benchmarks/serving.py                          # 1, 4, 16 and 32 users, 10 s per phase
    python benchmarks/serving.py --users 1,16 --seconds 6 --checkpoints checkpoints
    python benchmarks/serving.py --ray-address 127.0.0.1:6379 --skip-model-alone   # through Ray Serve
    python benchmarks/serving.py --users 1,16 --client-poll-ms 5   # latencies not rounded to 50 ms steps

It starts the app (`python -m playground`, the shipped checkpoints, GRADIO_ANALYTICS_ENABLED=False) on a free port
of 127.0.0.1, waits until its log says every model is loaded and warmed up, runs 32 text users at once and a few
translations untimed, then for each number of users runs every user in a thread of its own, with a gradio_client
Client of its own, making requests back to back for `--seconds`:

- text: `/generate_text`, LENGTH characters at temperature 0.8, a seed per request. **Aggregate characters/s** is
  the characters of every update received during the phase over its length. **Per-user latency per chunk** is
  the time a user waits for each update of its text: from the request to the first chunk, then from one chunk to
  the next (the page gets one update per compiled chunk of 64 characters; the last one adds the confidence view).
  Each phase's line also gives the first chunk's wait apart from the others'. gradio_client hands its messages
  over every 50 ms, so by default these waits come in 50 ms steps; `--client-poll-ms 5` measures them finer
  (`patch_client_polling` says what that costs).
- translate: `/translate`, greedy, sentences taken in turn. **Translations/s** over the phase, and the latency of
  each request (from the call to the answer).

Then, in this process without Gradio, the same text streams advanced together by the model alone and greedy
translations one by one against one batch (what batching gains before Gradio's own cost per request and update).
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

from benchmarks.common import app_client, patch_client_polling, wait_until_warm  # noqa: E402  (one TLS context)
from trainers.common.hardware import cpu_info  # noqa: E402
from tests.conftest import start_app, stop_app  # noqa: E402  (the same app launcher the tests use)

PROMPT = "Ham.\nTo be, or not to be"
LENGTH = 640  # ten chunks
CLIENT_NICENESS = 10  # real users' browsers run elsewhere; here they share the app's two cores, so below it
POLL_SECONDS = 0.005  # how often a text user looks for new chunks: the resolution of the per-chunk latency
SENTENCES = ["No se pudo abrir el archivo.", "¿Puedes ayudarme?", "Mañana vamos a la playa.",
             "El gato duerme en la cama.", "¿Dónde está la estación de tren?", "Me gusta leer libros.",
             "Y habló Dios á Noé diciendo:", "Guarde el documento antes de salir."]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))] if ordered else float("nan")


def user_client(url: str, warm_call, ready: threading.Barrier):
    """A user's own Client, its session opened by one untimed call, then waiting for the others at `ready`."""
    client = app_client(url)
    warm_call(client)
    ready.wait()
    return client


def text_user(url: str, user: int, ready: threading.Barrier, record: dict) -> None:
    """One user: text requests back to back until the phase ends, recording (arrival time, characters) of each
    update and the wait before it."""
    client = user_client(url, lambda client: client.predict("a", 10, 0.0, 0, 1.0, 0, api_name="/generate_text"), ready)
    request = 0
    while time.monotonic() < record["stop_at"]:
        started = last = time.monotonic()
        written = len(PROMPT)
        job = client.submit(PROMPT, LENGTH, 0.8, 0, 1.0, user * 1000 + request, api_name="/generate_text")
        seen = 0
        while True:
            # Polled every POLL_SECONDS, not iterated: gradio_client's Job iterator sleeps 1 ms at a time holding
            # its lock, and 32 of them spinning took the CPU the app needed.
            finished = job.done()
            outputs = job.outputs()
            now = time.monotonic()
            for output in outputs[seen:]:
                text = output[0]
                if len(text) > written:
                    record["updates"].append((now, len(text) - written))
                    record["waits"].append(now - last)
                    record["first" if written == len(PROMPT) else "later"].append(now - last)
                    written, last = len(text), now
            seen = len(outputs)
            if finished:
                break
            time.sleep(POLL_SECONDS)
        if written != len(PROMPT) + LENGTH:
            record["short"] += 1
        record["requests"].append(time.monotonic() - started)
        request += 1


def translate_user(url: str, user: int, ready: threading.Barrier, record: dict) -> None:
    def translate(client, sentence):
        return client.predict(sentence, "Greedy", 5, 0.8, 0, api_name="/translate")

    client = user_client(url, lambda client: translate(client, "hola"), ready)
    request = 0
    while time.monotonic() < record["stop_at"]:
        started = time.monotonic()
        translate(client, SENTENCES[(user + request) % len(SENTENCES)])
        record["done"].append((time.monotonic(), time.monotonic() - started))
        request += 1


def phase(worker, url: str, users: int, seconds: float, record_factory) -> tuple[dict, float, float]:
    """Runs `users` threads of `worker` for `seconds`, timed from the moment every user has its client and session
    (opening them costs the app more than a request); returns the merged record and the measured window."""
    records = [record_factory() for _ in range(users)]
    clock = {}

    def start_clock():  # runs once every user is ready, before any is released
        clock["started"] = time.monotonic()
        for record in records:
            record["stop_at"] = clock["started"] + seconds

    ready = threading.Barrier(users, action=start_clock)
    threads = [threading.Thread(target=worker, args=(url, user, ready, records[user])) for user in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started, stop_at = clock["started"], clock["started"] + seconds
    merged = {key: (sum(record[key] for record in records) if isinstance(records[0][key], int)
                    else [item for record in records for item in record[key]])
              for key in records[0] if key != "stop_at"}
    return merged, started, stop_at


def text_record() -> dict:
    return {"updates": [], "waits": [], "first": [], "later": [], "requests": [], "short": 0}


def translate_record() -> dict:
    return {"done": []}


def model_alone(checkpoints: Path, counts: list[int]) -> list[str]:
    """The same work in this process without Gradio, as table rows: text streams advanced together by
    `TextGenerator.advance` (characters/s for each number of users), and greedy translations one by one against
    one `Translator.translate_many` batch of as many sentences."""
    from trainers.char_rnn.generate import TextGenerator
    from trainers.common.threads import use_serving_threads
    from trainers.nmt.translate import Translator

    use_serving_threads()  # as the app runs its models (trainers.common.threads)
    rows, generator = [], TextGenerator.load(checkpoints / "char_rnn")
    generator.compile_batch_sizes()
    rates = {}
    for users in counts:
        streams = [generator.start(PROMPT, LENGTH, temperature=0.8, seed=user) for user in range(users)]
        started = time.perf_counter()
        while not streams[0].finished:
            generator.advance(streams)
        rates[users] = users * LENGTH / (time.perf_counter() - started)
        rows.append(f"| text, model alone | {users} | {rates[users]:,.0f} chars/s | {rates[users] / rates[counts[0]]:.2f}x "
                    f"| | | |")
    translator = Translator.load(checkpoints / "nmt")
    for users in counts:
        sentences = [SENTENCES[index % len(SENTENCES)] for index in range(users)]
        translator.translate_many([{"text": sentence} for sentence in sentences])  # traces this batch shape
        started = time.perf_counter()
        for sentence in sentences:
            translator.translate(sentence, "greedy")
        alone = users / (time.perf_counter() - started)
        started = time.perf_counter()
        translator.translate_many([{"text": sentence} for sentence in sentences])
        together = users / (time.perf_counter() - started)
        rows.append(f"| translate, model alone | {users} | {together:,.1f} translations/s in one batch, "
                    f"{alone:,.1f} one by one | {together / alone:.2f}x one by one | | | |")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,4,16,32", help="numbers of concurrent users, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--skip-translate", action="store_true")
    parser.add_argument("--skip-model-alone", action="store_true", help="leave out the in-process rows")
    parser.add_argument("--ray-address", default=None,
                        help="serve the models from this Ray cluster (the app as its ingress, docs/scale.md)")
    parser.add_argument("--client-poll-ms", type=float, default=None,
                        help="how often gradio_client looks at the messages it received (default: its own 50 ms, "
                             "which rounds every wait up to 50 ms steps; 5 measures finer and costs the app CPU)")
    parser.add_argument("--text-streams", type=int, default=None,
                        help="the Text endpoint's concurrency limit in the app (default: the app's own, 32)")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.users.split(",")]
    if args.client_poll_ms:
        patch_client_polling(args.client_poll_ms / 1000)
    print(f"CPU: {cpu_info()[0]}, {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}; gradio_client "
          f"looks at its messages every {args.client_poll_ms or 50:g} ms", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        limit = {} if args.text_streams is None else {"EAGER_PLAYGROUND_TEXT_STREAMS": str(args.text_streams)}
        if args.ray_address:
            limit["EAGER_PLAYGROUND_RAY_ADDRESS"] = args.ray_address
            print(f"models served by the Ray cluster at {args.ray_address}", flush=True)
        process, url = start_app(Path(args.checkpoints), Path(folder) / "app.log", extra_env=limit)
        print(f"text endpoint concurrency limit: {args.text_streams or 'the app default'}", flush=True)
        os.nice(CLIENT_NICENESS)  # the users' side runs below the app, which was started at the usual priority
        try:
            wait_until_warm(Path(folder) / "app.log")  # the app loads and compiles every model in the background first
            print("warming up (32 text users at once, then translations)...", flush=True)
            phase(text_user, url, 32, 1.0, text_record)
            phase(translate_user, url, 4, 2.0, translate_record)
            rows = []
            for users in counts:
                record, started, stop_at = phase(text_user, url, users, args.seconds, text_record)
                inside = sum(count for when, count in record["updates"] if started <= when <= stop_at)
                rows.append(("text", users, inside / (stop_at - started), record["waits"], record["short"]))
                ms = {key: [percentile(record[key], share) * 1000 for share in (0.5, 0.95)]
                      for key in ("waits", "first", "later")}
                print(f"text, {users} users: {rows[-1][2]:,.0f} chars/s, per-chunk wait p50 {ms['waits'][0]:.0f} ms, "
                      f"p95 {ms['waits'][1]:.0f} ms (first chunk of a request p50 {ms['first'][0]:.0f} / p95 "
                      f"{ms['first'][1]:.0f} ms, the others {ms['later'][0]:.0f} / {ms['later'][1]:.0f} ms)", flush=True)
            if not args.skip_translate:
                for users in counts:
                    record, started, stop_at = phase(translate_user, url, users, args.seconds, translate_record)
                    done = [latency for when, latency in record["done"] if when <= stop_at]
                    rows.append(("translate", users, len(done) / (stop_at - started),
                                 [latency for _, latency in record["done"]], 0))
                    print(f"translate, {users} users: {rows[-1][2]:.1f} translations/s", flush=True)
        finally:
            stop_app(process)
    alone_rows = [] if args.skip_model_alone else model_alone(Path(args.checkpoints), counts)
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
    for row in alone_rows:
        print(row)
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
