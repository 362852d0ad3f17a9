"""Single answers at batch 1 with the shipped checkpoints: what one user waits for after one click.

    python benchmarks/single_answers.py [--checkpoints checkpoints] [--repeats 30]

Arms (issue 14, goal 3), each timed as the tab runs it, after a warm-up call:
- **translate**: one everyday sentence, greedy, through `Translator.translate` (tokenise, encode, decode,
  detokenise, attention rows); then beam 4 on the same sentences (the beam/greedy ratio);
- **caption**: one picture file, from the bytes on disk to the caption (open, EXIF turn, resize, MobileNet with
  its ImageNet head, novelty judgement, decoder), greedy; then beam 3;
- **digits**: 64 digits from a seed, the generator alone and with the classifier that labels each digit (the tab),
  in the precision the app serves them in (`auto`: bfloat16 where the CPU computes it natively), and the
  generator alone in float32 beside it, and the same generator with its upsampling run as TensorFlow's transposed
  convolutions (`Generator.phases` off; the app runs them in phases on CPUs without AVX-512, trainers/dcgan/model.py);
  with `--digits-student FOLDER`, also a smaller generator distilled from
  the shipped one (`python -m trainers.dcgan.distill`), in the same precision as the tab's.
Repeats alternate between the arms (a noisy machine slows them alike); medians and 90th percentiles are printed
with the goal beside them, and the CPU it ran on. The models run with one thread per op, as the app runs them
(`--threads default` for TensorFlow's default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from trainers.common.hardware import describe_cpu  # noqa: E402

SENTENCES = ["¿Dónde está la estación de tren?", "Mañana vamos a la playa con mis amigos.",
             "No tengo tiempo para leer hoy.", "El gato duerme en la cama."]
GOALS_MS = {"translate greedy": 30, "caption greedy": 60, "digits 64 (generator)": 30}


def pictures() -> list[Path]:
    import matplotlib

    root = Path(matplotlib.get_data_path()) / "sample_data"
    return [root / "grace_hopper.jpg", root / "Minduka_Present_Blue_Pack.png"]


def timed(function) -> float:
    began = time.perf_counter()
    function()
    return (time.perf_counter() - began) * 1000


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", default=str(Path(__file__).resolve().parents[1] / "checkpoints"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", choices=("serving", "default"), default="serving",
                        help="serving: one thread per op, as the app runs its models (trainers.common.threads); "
                             "default: TensorFlow's default threads (benchmarks/op_threads.py compares the two)")
    parser.add_argument("--digits-student", default="",
                        help="also time this DCGAN folder's generator (e.g. runs/dcgan_distilled)")
    args = parser.parse_args(argv)
    if args.threads == "serving":
        from trainers.common.threads import use_serving_threads

        use_serving_threads()
    from trainers.captioning.caption import Captioner
    from trainers.dcgan.generate import DigitGenerator
    from trainers.nmt.translate import Translator

    root = Path(args.checkpoints)
    translator = Translator.load(root / "nmt")
    captioner = Captioner.load(root / "captioning")
    digits = DigitGenerator.load(root / "dcgan")  # "auto", as the tab loads it
    digits_float32 = DigitGenerator.load(root / "dcgan", precision="float32")
    digits_transposed = DigitGenerator.load(root / "dcgan")
    digits_transposed.generator.phases = False
    files = pictures()
    arms = {
        "translate greedy": lambda i: translator.translate(SENTENCES[i % len(SENTENCES)], method="greedy"),
        "translate beam 4": lambda i: translator.translate(SENTENCES[i % len(SENTENCES)], method="beam", beam=4),
        "caption greedy": lambda i: captioner.caption(files[i % len(files)], beam=1),
        "caption beam 3": lambda i: captioner.caption(files[i % len(files)], beam=3),
        "digits 64 (generator)": lambda i: digits.generate(i, 64),
        "digits 64 (generator + classifier)": lambda i: digits.generate_judged(i, 64),
        "digits 64 (generator, float32)": lambda i: digits_float32.generate(i, 64),
        "digits 64 (transposed convolutions)": lambda i: digits_transposed.generate(i, 64),
    }
    if args.digits_student:
        student = DigitGenerator.load(Path(args.digits_student), precision=digits.precision)
        arms["digits 64 (student generator)"] = lambda i: student.generate(i, 64)
    for name, arm in arms.items():  # warm-up: traces, first allocations
        for index in range(max(len(SENTENCES), len(files))):
            arm(index)
    times = {name: [] for name in arms}
    for index in range(args.repeats):
        for name, arm in arms.items():
            times[name].append(timed(lambda: arm(index)))
    print(describe_cpu())
    print(f"digits are served in {digits.precision} here ('auto'), upsampling "
          f"{'in phases' if digits.generator.phases else 'as transposed convolutions'}; threads: {args.threads}")
    print(f"{'arm':38s} {'median ms':>10s} {'p90 ms':>8s}  goal")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        goal = GOALS_MS.get(name)
        verdict = f"< {goal} ms: {'met' if medians[name] < goal else 'NOT met'}" if goal else ""
        print(f"{name:38s} {medians[name]:10.1f} {p90:8.1f}  {verdict}")
    print(f"beam/greedy: translate {medians['translate beam 4'] / medians['translate greedy']:.2f}x, "
          f"caption {medians['caption beam 3'] / medians['caption greedy']:.2f}x; "
          f"classifier adds {medians['digits 64 (generator + classifier)'] - medians['digits 64 (generator)']:.1f} ms; "
          f"float32/auto digits {medians['digits 64 (generator, float32)'] / medians['digits 64 (generator)']:.2f}x; "
          f"served/transposed digits "
          f"{medians['digits 64 (generator)'] / medians['digits 64 (transposed convolutions)']:.2f}x")
    if args.digits_student:
        ratio = medians["digits 64 (student generator)"] / medians["digits 64 (generator)"]
        print(f"student/shipped digits: {ratio:.2f}x ({student.config.generator_filters} against "
              f"{digits.config.generator_filters} filters)")


if __name__ == "__main__":
    main()
