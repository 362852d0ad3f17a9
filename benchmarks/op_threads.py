"""How the app's process spends its cores: TensorFlow's default threads against one thread per op, side by side.

    python benchmarks/op_threads.py [--checkpoints checkpoints] [--rounds 3] [--repeats 15]

Two arms, each in a fresh process (a process's thread pools are fixed once TensorFlow runs), rounds alternating
between them so a noisy machine slows both alike; the best round of each is reported (its lowest time, its fewest
cores busy):
- **default**: TensorFlow's default, every op on all the cores (intra-op threads = cores), each model called on its
  whole batch: the app until 2026-12-07;
- **serving**: `trainers.common.threads.use_serving_threads()` -- one thread per op, one inter-op thread per core --
  and the digits' generator and classifier called on slices of their batch that run side by side
  (`parallel_batches`): what the app and its Ray replicas run now.

Workloads, the shipped checkpoints in the precision the app serves them in (`auto`): one 64-character text chunk
(`TextGenerator.advance`, with confidence and top-5) for 1, 16 and 32 streams, with the process's CPU time per wall
second during the chunks (cores kept busy: what is left for Gradio on the same machine); 64 digits with the
classifier's labels (the Digits tab); one greedy translation; one greedy caption from a picture file; the COCO
detector on one picture (the Caption tab runs it beside the caption). Every output
is the same in both arms (tests/test_threads.py). Prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from trainers.common.hardware import describe_cpu  # noqa: E402

ARMS = ("default", "serving")
STREAMS = (1, 16, 32)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(arm: str, checkpoints: Path, repeats: int) -> dict:
    """One arm's medians (ms), in this process."""
    if arm == "serving":
        from trainers.common.threads import use_serving_threads

        if not use_serving_threads():
            raise SystemExit("TensorFlow ran before the threads were set")
    from benchmarks.single_answers import SENTENCES, pictures
    import numpy as np
    from PIL import Image

    from trainers.captioning.caption import Captioner
    from trainers.captioning.detector import Detector
    from trainers.char_rnn.generate import TextGenerator
    from trainers.common import threads
    from trainers.dcgan.generate import DigitGenerator
    from trainers.nmt.translate import Translator

    text = TextGenerator.load(checkpoints / "char_rnn")
    digits = DigitGenerator.load(checkpoints / "dcgan")
    if arm == "default":  # whole batches, as before parallel_batches (one slice is the whole batch)
        digits._run = threads.parallel_batches(lambda latent: digits.generator(latent, training=False), parts=1)
        judge_model = digits.judge.model
        digits.judge._run = threads.parallel_batches(lambda images: judge_model(images, training=False), parts=1)
    translator = Translator.load(checkpoints / "nmt")
    captioner = Captioner.load(checkpoints / "captioning")
    detector = Detector.load()
    files = pictures()
    shown = [np.asarray(Image.open(path).convert("RGB").resize((448, 448))) for path in files]
    results: dict[str, float] = {}
    for count in STREAMS:
        streams = [text.start("ROMEO:", 10**7, temperature=0.8, seed=seed) for seed in range(count)]
        text.advance(streams)
        text.advance(streams)
        times, began_cpu, began = [], cpu_seconds(), time.perf_counter()
        for _ in range(repeats):
            start = time.perf_counter()
            text.advance(streams)
            times.append(time.perf_counter() - start)
        results[f"text chunk, {count} streams"] = statistics.median(times) * 1000
        results[f"cores busy, {count} streams"] = (cpu_seconds() - began_cpu) / (time.perf_counter() - began)
    arms = {"64 digits + classifier": lambda index: digits.generate_judged(index, 64),
            "translate greedy": lambda index: translator.translate(SENTENCES[index % len(SENTENCES)], method="greedy"),
            "caption greedy": lambda index: captioner.caption(files[index % len(files)], beam=1)}
    if detector is not None:  # the Caption tab runs it beside the caption (playground/caption_tab.py)
        arms["COCO detector, one picture"] = lambda index: detector.detect(shown[index % len(shown)])
    for name, arm in arms.items():
        for index in range(4):
            arm(index)
        times = []
        for index in range(repeats):
            start = time.perf_counter()
            arm(index)
            times.append(time.perf_counter() - start)
        results[name] = statistics.median(times) * 1000
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, Path(args.checkpoints), args.repeats)))
        return
    print(describe_cpu(), flush=True)
    rounds: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for round_index in range(args.rounds):
        for arm in ARMS if round_index % 2 == 0 else reversed(ARMS):
            done = subprocess.run([sys.executable, __file__, "--child", arm, "--checkpoints", args.checkpoints,
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"the {arm} arm failed:\n{done.stderr[-2000:]}")
            rounds[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_index + 1}, {arm}: done", flush=True)
    best = {arm: {key: min(result[key] for result in rounds[arm]) for key in rounds[arm][0]} for arm in ARMS}
    print(f"\n{'workload (best of ' + str(args.rounds) + ' rounds)':40s} {'default':>10s} {'serving':>10s} "
          f"{'default/serving':>16s}")
    for key in best["default"]:
        default, serving = best["default"][key], best["serving"][key]
        unit = "" if key.startswith("cores") else " ms"
        print(f"{key:40s} {default:8.2f}{unit:3s} {serving:8.2f}{unit:3s} {default / serving:15.2f}x")
    for count in STREAMS:
        key = f"text chunk, {count} streams"
        print(f"text, {count} streams: {count * 64 / best['default'][key] * 1000:,.0f} chars/s default, "
              f"{count * 64 / best['serving'][key] * 1000:,.0f} serving")
    print("default/serving > 1x: the serving threads are faster (for 'cores busy', they leave more of the CPU free)")


if __name__ == "__main__":
    main()
