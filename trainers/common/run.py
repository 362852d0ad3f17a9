"""One training run, for every model: the run folder, the distribution strategy, the epoch loop.

A model's `train.py` subclasses `Recipe` with only what is its own (data, networks, optimizer, the step, the
end-of-epoch metrics and samples, the servable files) and hands it to `fit`:

    recipe = CharRNNRecipe(config)
    metrics = fit(recipe)

`fit` owns everything else, once:

- **Where the weights come from.** A new run; `--resume` (the default) continues `<out>` from its last epoch;
  `--init-from FOLDER` starts a new run from a servable checkpoint folder (weights, vocabulary, epoch count).
- **Resume state** in `<out>/resume/`: a `tf.train.Checkpoint` (networks, optimizers, step, epoch, the recipe's
  `tf.random.Generator`s) kept by a `tf.train.CheckpointManager` (last two, written atomically), beside
  `state.json` (history, wall time, what the recipe wants back).
- **The servable folder** `<out>/checkpoint/` after every epoch (`config.json`, `model.weights.h5`, vocabulary,
  `metrics.json`), swapped in atomically by `checkpoint.write_folder`: what the app serves after a promote.
- **Distribution.** Networks and optimizers are built under `strategy.scope()`; batches go through
  `strategy.experimental_distribute_dataset`, the step through `strategy.run`, its outputs through
  `strategy.reduce`. `--strategy multi-worker` reads `TF_CONFIG`; only the chief writes progress and checkpoints.
- **Progress**: `progress.jsonl`, TensorBoard and the terminal line (see progress.py).

Inside a step, `global_mean` and `apply_gradients` make the update independent of the number of replicas: the
loss is the mean over the *global* batch and gradients are combined across replicas before clipping.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from trainers.common import checkpoint
from trainers.common.hardware import resolve_precision
from trainers.common.progress import Progress

SERVABLE = "checkpoint"  # <out>/checkpoint: the servable folder the Training tab promotes
RESUME = "resume"  # <out>/resume: tf.train.Checkpoint files + state.json
TRAIN_CONFIG = "train_config.json"
OLD_FORMAT_FILES = (checkpoint.OPTIMIZER_FILE, checkpoint.STATE_FILE)  # resume files of trainers before the run core


class RunError(ValueError):
    """A run that cannot start as asked, with a sentence a person understands."""


# ---------------------------------------------------------------- distribution


CPU_REPLICAS = "EAGER_PLAYGROUND_CPU_REPLICAS"  # split the CPU into this many logical devices (tests, demos)


def split_cpu(replicas: int) -> None:
    """Makes the CPU appear as `replicas` logical devices, so MirroredStrategy has replicas on a CPU-only machine.

    Must run before TensorFlow creates its first tensor; afterwards TensorFlow refuses and the CPU stays one device.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or []) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:
        raise RunError(f"cannot split the CPU into {replicas} devices once TensorFlow has started: {error}") from None


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy a `--strategy` flag names.

    `mirrored` copies the model onto every local GPU, or onto $EAGER_PLAYGROUND_CPU_REPLICAS logical CPU devices.
    """
    if name == "mirrored":
        replicas = int(os.environ.get(CPU_REPLICAS, "0") or 0)
        if replicas > 1:
            split_cpu(replicas)
            return tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise RunError("--strategy multi-worker needs TF_CONFIG (the cluster and this worker's task), as "
                           "https://www.tensorflow.org/guide/distributed_training describes")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()  # the default strategy: one device, no copies


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes progress and checkpoints (task 0 of a multi-worker cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def global_mean(total, count):
    """A replica's share of the mean over the global batch, scaled so that the mean over replicas is that mean.

    Call it inside the step with this replica's sum of per-example (or per-token) losses and their number. The
    counts are summed over the replicas, so uneven shares (padding, masks) weigh as they would in one batch:
    `mean over replicas of global_mean(...)` is exactly `sum of totals / sum of counts`. With one replica it is
    plain `total / count`.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    count = tf.cast(count, tf.float32)
    if replicas > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return tf.cast(total, tf.float32) / tf.maximum(count, 1.0) * replicas


def apply_gradients(optimizer, gradients, variables, clip_norm: float = 0.0) -> None:
    """Applies the global gradient, clipped to a global norm of `clip_norm` (0: off), on every replica.

    With losses from `global_mean`, the global gradient is the mean of the replicas' gradients. Keras optimizers
    sum gradients across replicas themselves, but only after clipping, and clipping each replica's share would make
    the update depend on the number of replicas. So the mean is taken here, clipped, and handed to the optimizer
    divided by the number of replicas (its own sum gives back the clipped mean).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    # Embedding gradients arrive as tf.IndexedSlices with one row per occurrence of a token. Keras' Adam updates
    # such slices row by row, so a token seen twice in a batch gets its moments updated twice with the parts of
    # its gradient instead of once with their sum (its second moment comes out too small). Dense gradients give the
    # textbook update, the same on one device as on several (where they must be dense to be all-reduced anyway).
    gradients = [tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient
                 for gradient in gradients]
    if replicas > 1:
        gradients = [gradient / replicas for gradient in context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)]
    if clip_norm:
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
    if replicas > 1:
        gradients = [gradient / replicas for gradient in gradients]
    optimizer.apply(gradients, variables)


# ---------------------------------------------------------------- what a model provides


class Recipe:
    """The model-specific half of a training run. `fit` calls these, in this order:

    1. `prepare(start)`: load data; `start` is the folder weights come from (resume/init-from) or None, so
       the vocabulary can be read from it. Set `self.steps_per_epoch`.
    2. `build()` (under the strategy's scope): create networks and optimizers, with every variable built
       (optimizer.build), so that a restore fills them all.
    3. `trackables()`: what the resume checkpoint holds, e.g. {"model": ..., "optimizer": ...}.
    4. `load_servable(folder)`: the weights of a servable folder, for --init-from.
    5. every epoch: `dataset(epoch)` (that epoch's global batches, exactly `steps_per_epoch`), `train_step(batch)`
       per replica (returns a dict of scalars), `after_step(step)`, then `end_epoch(epoch)` -> (metrics, sample),
       `summary_metrics(state, metrics)` -> metrics.json, and `write_servable(folder, metrics)`.
    """

    name = "model"
    loss_names: tuple[str, ...] = ("loss",)

    def __init__(self, config, stream=None):
        self.config = config
        self.stream = stream or sys.stdout
        self.steps_per_epoch = 0
        self.extra_state: dict = {}  # kept in state.json and given back on resume

    def log(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    def prepare(self, start: Path | None) -> None:
        raise NotImplementedError

    def build(self) -> None:
        raise NotImplementedError

    def trackables(self) -> dict:
        raise NotImplementedError

    def load_servable(self, folder: Path) -> None:
        raise NotImplementedError

    def model_config(self) -> dict:
        """The networks' constructor arguments (config.json); a resumed or init-from folder must match them."""
        raise NotImplementedError

    def start_event(self) -> dict:
        """Fields of the `start` progress event: the data's description, parameter counts."""
        return {}

    def dataset(self, epoch: int) -> tf.data.Dataset:
        raise NotImplementedError

    def train_step(self, batch) -> dict:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Called after every step in cross-replica context (e.g. a moving average of weights)."""

    def begin_epoch(self, epoch: int) -> None:
        """Called before an epoch's first step (e.g. a learning rate per epoch)."""

    def end_epoch(self, epoch: int, losses: dict) -> tuple[dict, dict]:
        """(metrics, sample) at the end of an epoch; `losses` are the epoch's mean training losses."""
        raise NotImplementedError

    def summary_metrics(self, state: dict, metrics: dict) -> dict:
        """metrics.json of the servable folder."""
        raise NotImplementedError

    def write_servable(self, folder: Path, metrics: dict) -> None:
        """Writes the servable files into `folder` (a temporary folder `fit` swaps into place)."""
        raise NotImplementedError

    def after_epoch_saved(self, epoch: int, state: dict, metrics: dict) -> None:
        """Called after the epoch's checkpoint is written (e.g. keep a best epoch)."""


# ---------------------------------------------------------------- the run folder


@dataclasses.dataclass
class RunState:
    epoch: int = 0
    step: int = 0
    elapsed_seconds: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)


class RunFolder:
    """`<out>`: decides between a new run, a resumed one and an --init-from one, and keeps the state files."""

    def __init__(self, config):
        self.config = config
        self.out = Path(config.out)
        self.servable = self.out / SERVABLE
        self.resume_dir = self.out / RESUME
        self.state_file = self.resume_dir / checkpoint.STATE_FILE

    @property
    def resuming(self) -> bool:
        return bool(self.config.resume) and self.state_file.is_file()

    def check_old_format(self) -> None:
        """A run folder written before the run core (optimizer.npz) cannot be resumed: say so, touch nothing."""
        if self.config.resume and not self.resuming and any((self.servable / name).is_file()
                                                             for name in OLD_FORMAT_FILES):
            raise RunError(
                f"{self.out} was written by an older version of this trainer (optimizer.npz/state.json) and cannot "
                f"be resumed; continue from its weights with --init-from {self.servable} --out <a new folder>, or "
                f"give --resume false to start over in it")

    def start_folder(self) -> Path | None:
        """The folder the weights and vocabulary come from: the run's own (resume), --init-from, or none."""
        if self.resuming:
            return self.servable
        if self.config.init_from:
            return checkpoint.require_folder(Path(self.config.init_from))
        return None

    def read_state(self) -> RunState:
        raw = checkpoint.read_json(self.state_file)
        return RunState(**{field.name: raw[field.name] for field in dataclasses.fields(RunState) if field.name in raw})

    @staticmethod
    def state_from_servable(folder: Path) -> RunState:
        """A promoted checkpoint keeps its progress in metrics.json: --init-from carries on its epoch count."""
        previous = checkpoint.read_json(folder / checkpoint.METRICS_FILE) \
            if (folder / checkpoint.METRICS_FILE).is_file() else {}
        return RunState(epoch=previous.get("epochs", 0), step=previous.get("steps", 0),
                        elapsed_seconds=previous.get("wall_time_seconds", 0.0),
                        history=previous.get("history", []))

    def write_state(self, state: RunState) -> None:
        checkpoint.write_json(self.state_file, dataclasses.asdict(state))


# ---------------------------------------------------------------- the loop


def _reduce(strategy, outputs: dict) -> dict:
    return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None) for name, value in outputs.items()}


def fit(recipe: Recipe) -> dict:
    """Runs (or resumes) `recipe`'s training run and returns the servable folder's metrics."""
    config = recipe.config
    folder = RunFolder(config)
    folder.check_old_format()
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    # "auto" becomes the precision this CPU computes fastest; the run records what it really ran in. After the
    # strategy: on a CPU whose flags promise bfloat16 the choice runs a matmul probe, and TensorFlow's devices can
    # no longer be split once an op has run.
    config.precision = resolve_precision(config.precision)
    keras.utils.set_random_seed(config.seed)

    start = folder.start_folder()
    recipe.prepare(start)
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        with strategy.scope():
            recipe.build()
            step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            epoch_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            resume_checkpoint = tf.train.Checkpoint(step=step_counter, epoch=epoch_counter, **recipe.trackables())
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if start is not None:
        stored = checkpoint.read_json(start / checkpoint.CONFIG_FILE)
        if stored != recipe.model_config():
            raise RunError(f"{start} holds a model of another shape ({stored}); give the same model settings, or "
                           f"another --out / --resume false")

    # Non-chief workers must save too (the save is collective), but into a folder of their own that is removed.
    manager_dir = folder.resume_dir if chief else Path(tempfile.mkdtemp(prefix="worker-resume-"))
    manager = tf.train.CheckpointManager(resume_checkpoint, str(manager_dir), max_to_keep=2)
    if folder.resuming:
        latest = manager.latest_checkpoint
        if latest is None:
            raise RunError(f"{folder.resume_dir} has a state.json but no checkpoint; give --resume false to start over")
        resume_checkpoint.restore(latest).assert_existing_objects_matched()
        state = folder.read_state()
        if state.epoch != int(epoch_counter.numpy()):
            raise RunError(f"{folder.resume_dir}: state.json (epoch {state.epoch}) and the checkpoint (epoch "
                           f"{int(epoch_counter.numpy())}) disagree; give --resume false to start over")
    elif start is not None:
        recipe.load_servable(start)
        state = folder.state_from_servable(start)
        step_counter.assign(state.step)
        epoch_counter.assign(state.epoch)
        if state.epoch >= config.epochs:
            raise RunError(f"{start} was already trained {state.epoch} epochs; give --epochs above that")
    else:
        state = RunState()
    recipe.extra_state = state.extra
    if state.epoch >= config.epochs:
        recipe.log(f"{folder.out} already finished {state.epoch} epochs; raise --epochs to train further.")
        return state.metrics
    if chief:
        folder.out.mkdir(parents=True, exist_ok=True)
        checkpoint.write_json(folder.out / TRAIN_CONFIG, dataclasses.asdict(config))

    def distributed_step(batch):
        return _reduce(strategy, strategy.run(recipe.train_step, args=(batch,)))

    step_function = distributed_step if config.eager else tf.function(distributed_step)
    progress = Progress(folder.out if chief else Path(tempfile.mkdtemp(prefix="worker-progress-")), config.epochs,
                        recipe.steps_per_epoch, start_step=state.step, elapsed_before=state.elapsed_seconds,
                        log_every=config.log_every, stream=recipe.stream if chief else open(os.devnull, "w"),
                        tensorboard=chief)
    progress.event("start", config=dataclasses.asdict(config), steps_per_epoch=recipe.steps_per_epoch,
                   total_steps=recipe.steps_per_epoch * config.epochs, resumed_from_epoch=state.epoch,
                   replicas=strategy.num_replicas_in_sync, **recipe.start_event())
    step = state.step
    try:
        for epoch in range(state.epoch + 1, config.epochs + 1):
            recipe.begin_epoch(epoch)
            sums: dict[str, float] = {}
            steps_this_epoch = 0
            batches = strategy.experimental_distribute_dataset(epoch_dataset(recipe, epoch))
            for batch in batches:
                result = {name: float(value) for name, value in step_function(batch).items()}
                step += 1
                steps_this_epoch += 1
                step_counter.assign(step)
                recipe.after_step(step)
                if not all(math.isfinite(value) for value in result.values()):
                    raise FloatingPointError(f"the loss became {result} at step {step}; lower --learning-rate")
                for name, value in result.items():
                    sums[name] = sums.get(name, 0.0) + value
                progress.step(epoch, step, **result)
            losses = {name: total / max(steps_this_epoch, 1) for name, total in sums.items()}
            metrics, sample = recipe.end_epoch(epoch, losses)
            progress.epoch_end(epoch, step, **metrics)
            if sample:
                progress.sample(epoch, **sample)
            state = RunState(epoch=epoch, step=step, elapsed_seconds=progress.elapsed,
                             history=state.history + [{"epoch": epoch, "step": step, **metrics}],
                             extra=recipe.extra_state)
            state.metrics = recipe.summary_metrics(state, metrics)
            epoch_counter.assign(epoch)
            manager.save(checkpoint_number=epoch)  # every worker: the save is a collective operation
            if chief:
                checkpoint.write_folder(folder.servable, lambda temporary: recipe.write_servable(temporary,
                                                                                                 state.metrics))
                folder.write_state(state)
                recipe.after_epoch_saved(epoch, state, metrics)
    except BaseException as error:
        progress.close("cancelled" if isinstance(error, KeyboardInterrupt) else "error",
                       message=f"{type(error).__name__}: {error}")
        raise
    finally:
        if not chief:
            shutil.rmtree(manager_dir, ignore_errors=True)
    progress.close("done", **{k: v for k, v in state.metrics.items() if isinstance(v, (int, float))})
    return state.metrics


def epoch_seed(config, epoch: int) -> int:
    """The shuffling seed of an epoch: the same on every resume, different from epoch to epoch."""
    return int(config.seed) * 1000 + int(epoch)


def epoch_dataset(recipe, epoch: int) -> tf.data.Dataset:
    """The recipe's dataset for `epoch`, with tf.data's autotuning off. With it on, the last epoch's iterator,
    destroyed as the next epoch began, waited 7-21 s for one of tf.data's threads at some epoch starts: in the
    translator's quick look (a Python generator; 4 of 5 epoch starts in one run), the captioner's (a generator, 3
    of 8) and the DCGAN's (tensor slices and a parallel map, 5 of 8); py-spy --native: ~RootDataset::Iterator ->
    UnboundedThreadPool::LogicalThreadWrapper (AMD EPYC, 2026-12-07/08, docs/speed.md). The AUTOTUNE maps and
    prefetches of the char-RNN's and the DCGAN's pipelines then run untuned: their quick looks' steps were no
    slower (0.192 -> 0.170 and 0.078 -> 0.080 s)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return recipe.dataset(epoch).with_options(options)


def take_steps(dataset: tf.data.Dataset, steps: int) -> tf.data.Dataset:
    """Exactly `steps` batches of `dataset`, repeating it if one pass is shorter (--steps-per-epoch)."""
    return dataset.repeat().take(steps)

