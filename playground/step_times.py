"""Where a run's time went, from its `progress.jsonl`: seconds per step, start-up, end-of-epoch work.

The Training tab's duration estimate scales these parts to the settings on the form (see playground/estimate.py),
taking them from a preset's measurement (trainers/<model>/config.py) or from an earlier run on this machine.

- Seconds per step come from logged steps within one epoch only (after the first epoch, if there is a later one):
  the interval between two of them holds nothing but training steps.
- The end-of-epoch work (held-out scores, samples, the checkpoint) is what the interval across an epoch's end
  holds beyond its steps, and for the last epoch the time from its last step to the `done` event.
- Start-up is the rest of the time up to the last logged step: launching the process, imports, data, building,
  and the first epoch's tracing of the step (once per input shape), so the parts add up to the run's duration.

Measure a preset with the trainer's CLI and print its `Measurement`:

    launched=$(date +%s.%N); python -m trainers.char_rnn.train --out /tmp/quick ...; ended=$(date +%s.%N)
    python -m playground.step_times /tmp/quick --model char_rnn --launched $launched --ended $ended --load "another run trains"
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import statistics
from pathlib import Path

from trainers.common import hardware
from trainers.common.progress import read_events

def cpu_name() -> str:
    """This machine's CPU model name ('AMD EPYC', 'Intel(R) Xeon(R) Platinum 8488C'), as /proc/cpuinfo says."""
    return hardware.cpu_info()[0]


def _loss_series(steps: list[dict]) -> list[str]:
    return [name for name, value in steps[0].items()
            if "loss" in name and isinstance(value, (int, float)) and not isinstance(value, bool)] if steps else []


def split(events: list[dict], launched: float | None = None, metric: str | None = None) -> dict | None:
    """{seconds_per_step, epoch_seconds, startup_seconds, steps_per_pass, losses, heldout} of a run's events, or
    None when it has not logged two steps within one epoch yet (nothing measured). `launched` is the process's
    start (Unix time); without it the start-up is unknown (None). `epoch_seconds` is None until an epoch has ended.
    `heldout` is (metric, its value after the first epoch, after the last), if the epochs logged `metric`."""
    steps = [e for e in events if e.get("event") == "step" and isinstance(e.get("step"), int)
             and isinstance(e.get("elapsed"), (int, float))]
    pairs = [(a, b) for a, b in zip(steps, steps[1:]) if a.get("epoch") == b.get("epoch") and b["step"] > a["step"]]
    if not pairs:
        return None
    # The first epoch also traces the step once per input shape (seconds each): its steps time the rest only
    # when no later epoch has been logged. What the first epoch takes beyond its steps counts as start-up.
    later = [(a, b) for a, b in pairs if a.get("epoch") != steps[0].get("epoch")] or pairs
    seconds_per_step = (sum(b["elapsed"] - a["elapsed"] for a, b in later)
                        / sum(b["step"] - a["step"] for a, b in later))
    boundaries = [(b["elapsed"] - a["elapsed"]) - (b["step"] - a["step"]) * seconds_per_step
                  for a, b in zip(steps, steps[1:]) if a.get("epoch") != b.get("epoch")]
    done = next((e for e in reversed(events) if e.get("event") == "done"), None)
    overheads = boundaries + ([done["elapsed"] - steps[-1]["elapsed"]] if done is not None else [])
    last = steps[-1]
    startup = None
    if launched is not None and isinstance(last.get("time"), (int, float)):
        # Everything up to the last logged step that is neither a step nor an epoch's end: imports, data,
        # building, and the first epoch's tracing. The parts then add up to the run's duration.
        startup = max(0.0, last["time"] - launched - last["step"] * seconds_per_step - sum(boundaries))
    start = next((e for e in events if e.get("event") == "start"), {})
    epochs = [e for e in events if e.get("event") == "epoch"]
    if metric and not any(metric in e for e in epochs):
        metric = f"test_{metric}"  # metrics.json's "bleu4" is the epochs' "test_bleu4"
    scores = [e[metric] for e in epochs if isinstance(e.get(metric), (int, float))]
    configured = (start.get("config") or {}).get("steps_per_epoch")
    return {"seconds_per_step": seconds_per_step,
            "epoch_seconds": max(0.0, statistics.fmean(overheads)) if overheads else None,
            "startup_seconds": startup,
            "steps_per_pass": start.get("steps_per_epoch") if configured == 0 else None,
            "losses": tuple((name, steps[0][name], steps[-1][name]) for name in _loss_series(steps)
                            if name in steps[-1]),
            "heldout": (metric, scores[0], scores[-1]) if scores else ()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Print a preset's Measurement from a measured CLI run's folder.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", required=True, help="the trainer (its PROMOTION_METRIC is the held-out score)")
    parser.add_argument("--launched", type=float, required=True, help="Unix time the trainer's process started")
    parser.add_argument("--ended", type=float, help="Unix time it ended (omit for a warm-up that was stopped)")
    parser.add_argument("--load", default="idle", help="what else ran on the machine meanwhile")
    args = parser.parse_args(argv)
    metric = importlib.import_module(f"trainers.{args.model}.config").PROMOTION_METRIC[0]
    parts = split(read_events(args.run_dir), args.launched, metric)
    if parts is None:
        raise SystemExit(f"{args.run_dir} has not logged two steps within one epoch: nothing to measure")
    rounded = lambda value, digits: None if value is None else round(value, digits)  # noqa: E731
    print(f"Measurement(seconds_per_step={rounded(parts['seconds_per_step'], 4)}, "
          f"startup_seconds={rounded(parts['startup_seconds'], 1)}, "
          f"epoch_seconds={rounded(parts['epoch_seconds'], 1)}, steps_per_pass={parts['steps_per_pass']},\n"
          f"            cpu={cpu_name()!r}, load={args.load!r}, date={datetime.date.today().isoformat()!r},\n"
          f"            wall_seconds={rounded(args.ended - args.launched if args.ended else None, 1)}, "
          f"losses={tuple((name, round(a, 3), round(b, 3)) for name, a, b in parts['losses'])},\n"
          f"            heldout={tuple(round(v, 3) if isinstance(v, float) else v for v in parts['heldout'])})")


if __name__ == "__main__":
    main()
