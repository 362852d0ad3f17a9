"""Does a background training run slow the app down? Every tab's latency with and without one, in one run.

    python benchmarks/responsiveness.py                     # shipped text model if present, 20 requests a phase
    python benchmarks/responsiveness.py --requests 30 --checkpoints checkpoints

It starts the app on a free port with a temporary runs folder and times one request of each tab through the app's
API, as a page would (text: 200 characters; digits: a grid of 16; translate: one sentence, greedy; caption: a
photo, beam 1), the tabs taking turns, for three phases: idle, while a char-RNN run of the shipped configuration
trains in the background (started with the app's own `start_training` endpoint, measured once its first steps
are logged), and idle again after `cancel_training`. It prints the median and p95 of each tab in each phase and
each tab's slowdown (goal, issue 14: p95 under training < 1.5x the idle p95). Tabs without a shipped checkpoint
are left out.

The client looks at the messages it received every 5 ms (`--client-poll-ms`; gradio_client's own 50 ms rounds each
latency up to 50 ms steps, and a browser gets each message as it comes). It also prints how many steps the run
trained while measured and how long the app stopped it: the run trains at SCHED_IDLE and nice +10, stopped while
the app computes an answer and kept to one core between answers (playground/core_sharing.py;
EAGER_PLAYGROUND_CORE_SHARING=cores or off in this script's environment, which the app inherits, measures the
run kept to one core only, or left alone). A user thinks `--think-seconds` (1 s) after each answer before the
next click: the run trains in those pauses. With 0 the requests come back to back and the run trains only when
a 30 s stop has run out (core_sharing.LONGEST_PAUSE_SECONDS).

Without a shipped text checkpoint it serves an untrained model of the shipped shape (1024 GRU units): latency
depends on the shape, not on the weights. If this script itself runs under `nice -n 19`, the app and the trainer
end up at the same niceness (the trainer's SCHED_IDLE still holds), which the report states.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import app_client, patch_client_polling, wait_until_warm  # noqa: E402  (one TLS context)
from tests.conftest import start_app, stop_app  # noqa: E402  (the same app launcher the tests use)

PROMPT = "Ham.\nTo be, or not to be"
LENGTH = 200


def shipped_shape_checkpoint(folder: Path) -> Path:
    """An untrained char-RNN of the shipped shape (the latency does not depend on the weights)."""
    import keras

    from trainers.char_rnn.data import CharVocabulary, offline_corpus
    from trainers.char_rnn.model import CharRNNConfig, build, save
    from trainers.char_rnn.config import TrainConfig

    keras.utils.set_random_seed(0)
    shipped = TrainConfig()
    try:
        vocabulary = CharVocabulary.from_text(offline_corpus().train_text)
    except Exception:  # no offline data package: a printable-ASCII vocabulary of a similar size
        vocabulary = CharVocabulary.from_text("".join(chr(code) for code in range(32, 127)) + "\n")
    model = build(CharRNNConfig(vocab_size=vocabulary.size, embedding_dim=shipped.embedding_dim,
                                rnn_units=shipped.rnn_units))
    save(folder / "char_rnn", model, vocabulary, metrics={"model": "char_rnn", "note": "untrained, benchmark"})
    return folder


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def tab_requests(checkpoints: Path) -> dict:
    """tab -> a function(client, index) making one request as the page does, for the tabs that are served."""
    import matplotlib
    from gradio_client import handle_file

    photo = handle_file(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))
    sentences = ["¿Dónde está la estación de tren?", "Mañana vamos a la playa.", "El gato duerme en la cama."]

    def text(client, index):
        answer = client.predict(PROMPT, LENGTH, 0.7, 0, 1.0, index, api_name="/generate_text")[0]
        assert len(answer) == len(PROMPT) + LENGTH, "the text tab returned a short answer"

    requests = {"text": (text, "char_rnn"),
                "digits": (lambda client, index: client.predict(index, 16, api_name="/generate_digits"), "dcgan"),
                "translate": (lambda client, index: client.predict(sentences[index % 3], "Greedy", 5, 0.8, 0,
                                                                   api_name="/translate"), "nmt"),
                "caption": (lambda client, index: client.predict(photo, 1, api_name="/caption"), "captioning")}
    return {tab: call for tab, (call, folder) in requests.items() if (checkpoints / folder / "config.json").is_file()}


def measure(client, calls: dict, requests: int, label: str, think: float = 0.0) -> dict:
    """`requests` rounds, each one request per tab in turn, `think` seconds after each -> tab -> latencies (s)."""
    latencies = {tab: [] for tab in calls}
    for index in range(requests):
        for tab, call in calls.items():
            began = time.perf_counter()
            call(client, index)
            latencies[tab].append(time.perf_counter() - began)
            time.sleep(think)
    for tab, values in latencies.items():
        print(f"  {label:<28} {tab:<10} median {statistics.median(values) * 1000:7.0f} ms   "
              f"p95 {percentile(values, 0.95) * 1000:7.0f} ms   ({requests} requests)", flush=True)
    return latencies


def nice_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]
    except (OSError, IndexError):
        return "?"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="requests per phase (default 20)")
    parser.add_argument("--checkpoints", default=None, help="checkpoints folder (default: shipped if it has "
                                                            "char_rnn, else an untrained model of that shape)")
    parser.add_argument("--client-poll-ms", type=float, default=5,
                        help="how often the client looks at its received messages (default 5 ms, as a browser that "
                             "gets each one as it comes; gradio_client's own 50 ms rounds every latency up to 50 ms "
                             "steps, so a 45 ms answer that became 55 ms counted as 50 -> 100 ms)")
    parser.add_argument("--think-seconds", type=float, default=1.0,
                        help="a user's pause after each answer, reading it, before the next click (default 1 s; the "
                             "run trains in these pauses: the app stops it while it answers; 0 = back to back, "
                             "a stress test in which the run trains only after 30 s of stop)")
    args = parser.parse_args(argv)
    if args.think_seconds < 0:
        parser.error("--think-seconds must be 0 or more")
    if args.client_poll_ms != 50:
        patch_client_polling(args.client_poll_ms / 1000)
    if args.requests < 3:
        parser.error("--requests must be at least 3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from playground.core_sharing import mode

    sharing = {"pause": "pause (stopped while the app answers, one core between answers)",
               "cores": "cores (kept to one core while the app answers)",
               "off": "off (every core, never stopped)"}[mode()]
    scratch = Path(tempfile.mkdtemp(prefix="responsiveness-"))
    checkpoints = Path(args.checkpoints) if args.checkpoints else ROOT / "checkpoints"
    if not (checkpoints / "char_rnn" / "config.json").is_file():
        if args.checkpoints:
            parser.error(f"{checkpoints} has no char_rnn checkpoint")
        print("No shipped text model: serving an untrained model of the shipped shape.", flush=True)
        checkpoints = shipped_shape_checkpoint(scratch / "checkpoints")
    runs = scratch / "runs"
    process, url = start_app(checkpoints, scratch / "app.log", extra_env={"EAGER_PLAYGROUND_RUNS": str(runs)})
    try:
        client = app_client(url)
        if not wait_until_warm(scratch / "app.log"):
            raise SystemExit("the app's background warm-up did not end within 10 minutes")
        calls = tab_requests(checkpoints)
        config = json.loads((checkpoints / "char_rnn" / "config.json").read_text())
        from trainers.common.hardware import describe_cpu

        print(describe_cpu())
        print(f"Tabs {', '.join(calls)}; text model {config}; load average {os.getloadavg()[0]:.1f}; the client "
              f"looks at its messages every {args.client_poll_ms:g} ms and thinks {args.think_seconds:g} s after each "
              f"answer; core sharing {sharing}", flush=True)
        measure(client, calls, 3, "warm-up (not counted)")
        idle = measure(client, calls, args.requests, "idle", args.think_seconds)

        settings = json.dumps({"steps_per_epoch": 100000, "log_every": 1})  # the shipped configuration otherwise
        run_id, _ = client.predict("char_rnn", "offline", 1, settings, None, api_name="/start_training")
        deadline = time.monotonic() + 600
        while client.predict(run_id, api_name="/training_status")[0]["step"] == 0:
            if time.monotonic() > deadline:
                raise SystemExit("the background run logged no step in 10 minutes")
            time.sleep(1)
        pid = json.loads((runs / run_id / "job.json").read_text())["pid"]
        print(f"Background run {run_id} is training (app nice {nice_of(process.pid)}, trainer nice "
              f"{nice_of(pid)}).", flush=True)
        first = client.predict(run_id, api_name="/training_status")[0]
        began = time.monotonic()
        busy = measure(client, calls, args.requests, "during a training run", args.think_seconds)
        status = client.predict(run_id, api_name="/training_status")[0]
        measured_seconds = time.monotonic() - began
        client.predict(run_id, api_name="/cancel_training")
        after = measure(client, calls, args.requests, "idle again (after cancel)", args.think_seconds)
    finally:
        stop_app(process)
    paused = status.get("paused_seconds", 0) - first.get("paused_seconds", 0)
    print(f"\nThe run trained {status['step'] - first['step']} steps in the {measured_seconds:.0f} s it was measured "
          f"(step {first['step']} -> {status['step']}); the app stopped it for {paused:.1f} s of them "
          f"({paused / measured_seconds:.0%}; core sharing {sharing}).")
    print("Slowdown with a background run (against both idle phases together; goal p95 < 1.5x):")
    for tab in calls:
        baseline = idle[tab] + after[tab]
        ratio = percentile(busy[tab], 0.95) / percentile(baseline, 0.95)
        print(f"  {tab:<10} median x{statistics.median(busy[tab]) / statistics.median(baseline):.2f}, "
              f"p95 x{ratio:.2f}  {'met' if ratio < 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
