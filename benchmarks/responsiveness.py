"""Does a background training run slow the app down? The Text tab's latency with and without one, in one run.

    python benchmarks/responsiveness.py                     # shipped text model if present, 20 requests a phase
    python benchmarks/responsiveness.py --requests 30 --checkpoints checkpoints

It starts the app on a free port with a temporary runs folder, times `generate_text` (200 characters, through the
app's API, as a page would) for three phases: idle, while a char-RNN run of the shipped configuration trains in
the background (started with the app's own `start_training` endpoint, measured once its first steps are logged),
and idle again after `cancel_training`. It prints the median and p95 of each phase and the slowdown ratios.

Without a shipped text checkpoint it serves an untrained model of the shipped shape (1024 GRU units): latency
depends on the shape, not on the weights. Training runs at `nice +10` relative to the app; if this script itself
runs under `nice -n 19`, both end up at 19 and the priority gap disappears, which the report states.
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


def measure(client, requests: int, label: str) -> list[float]:
    latencies = []
    for index in range(requests):
        began = time.perf_counter()
        text = client.predict(PROMPT, LENGTH, 0.7, 0, 1.0, index, api_name="/generate_text")[0]
        latencies.append(time.perf_counter() - began)
        assert len(text) == len(PROMPT) + LENGTH, "the text tab returned a short answer"
    print(f"  {label:<28} median {statistics.median(latencies) * 1000:7.0f} ms   "
          f"p95 {percentile(latencies, 0.95) * 1000:7.0f} ms   ({requests} requests)", flush=True)
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
    args = parser.parse_args(argv)
    if args.requests < 3:
        parser.error("--requests must be at least 3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from gradio_client import Client

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
        client = Client(url, verbose=False)
        config = json.loads((checkpoints / "char_rnn" / "config.json").read_text())
        print(f"Text tab: {LENGTH} characters per request, model {config}; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        measure(client, 3, "warm-up (not counted)")
        idle = measure(client, args.requests, "idle")

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
        busy = measure(client, args.requests, "during a training run")
        status = client.predict(run_id, api_name="/training_status")[0]
        client.predict(run_id, api_name="/cancel_training")
        after = measure(client, args.requests, "idle again (after cancel)")
    finally:
        stop_app(process)
    baseline = idle + after
    print(f"\nThe run trained {status['step']} steps while measured.")
    print(f"Slowdown with a background run: median x{statistics.median(busy) / statistics.median(baseline):.2f}, "
          f"p95 x{percentile(busy, 0.95) / percentile(baseline, 0.95):.2f} "
          f"(against both idle phases together)")


if __name__ == "__main__":
    main()
