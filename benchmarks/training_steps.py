"""Training steps against tutorial-equivalent baselines, measured side by side in one run (issue 14, goal 2).

    python benchmarks/training_steps.py                       # all four models, full sizes (minutes)
    python benchmarks/training_steps.py --models char_rnn,dcgan --steps 2 --rounds 3
    python benchmarks/training_steps.py --quick --steps 1     # small sizes: a smoke run

For each model two kinds of arm, on random data of the right shapes:
- **tutorial**: the model and the training step as the TensorFlow tutorials wrote them (2019-2021 TF2 versions:
  Keras models, a `@tf.function` step around `tf.GradientTape`, float32, Adam), at the tutorials' sizes:
  char-RNN text_generation (Embedding 256, GRU 1024, batch 64 x 100); dcgan (batch 256, noise 100, the
  tutorial's Sequential networks); nmt_with_attention (batch 64, embedding 256, GRU 1024, Bahdanau attention,
  9,414 Spanish / 4,935 English words, 16 source / 11 target words, the 30,000-example configuration);
  image_captioning (cached InceptionV3 features 64 x 2048, embedding 256, GRU 512, 5,001 words, batch 64,
  captions padded to --caption-len, 20 tokens by default; the tutorial pads to the longest caption of its data).
- **project**: this project's own training step with the shipped configuration (the trainers' TrainConfig
  defaults, their model classes, recipes and step builders), in the precision the trainer resolves its default
  to (`resolve_precision`: `auto` is mixed_bfloat16 only on CPUs with native bfloat16); where that is bfloat16,
  also in float32.
Per arm: seconds per step, examples per second (sequences, image pairs, sentence pairs, captions) and the
achieved FLOP/s of an analytic count of one training step (benchmarks/flops.py); then the ratios project /
tutorial with the goals (examples/s >= 2x, FLOP/s >= 1x) marked met or NOT met. For the char-RNN also the
achieved FLOP/s as a share of a square-matmul peak measured in the same run, in the precision it ran in (goal
>= 50%). Rounds alternate between the arms of a model so a noisy machine slows them alike; the best round of
each arm is reported (the median in brackets). Prints the CPU model and flags it ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import flops  # noqa: E402
from benchmarks.common import alternating_rounds, matmul_peak  # noqa: E402
from trainers.common.hardware import describe_cpu, resolve_precision  # noqa: E402

MODELS = ("char_rnn", "dcgan", "nmt", "captioning")
GOAL_EXAMPLES, GOAL_FLOPS, GOAL_PEAK = 2.0, 1.0, 0.5


@dataclasses.dataclass
class Arm:
    name: str
    precision: str
    batch: int
    shape: str  # what one example is, for the table
    step: object  # a function of no arguments that runs one training step and waits for it
    step_flops: float
    tutorial: bool = False


def with_policy(precision: str, build):
    """`build()` with the Keras global policy set to `precision` (layers keep the policy they were made under)."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    try:
        return build()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def project_precisions(default: str) -> list[str]:
    """The precision a trainer runs in by default on this CPU, and float32 too where that is bfloat16."""
    resolved = resolve_precision(default)
    return [resolved] if resolved == "float32" else [resolved, "float32"]


def precision_label(default: str, precision: str) -> str:
    return f"{default} -> {precision}" if default != precision and resolve_precision(default) == precision \
        else precision


# ---------------------------------------------------------------- char-RNN


class TutorialCharModel(tf.keras.Model):
    """The 2021 text_generation tutorial's model."""

    def __init__(self, vocab_size, embedding_dim, rnn_units):
        super().__init__()
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tf.keras.layers.GRU(rnn_units, return_sequences=True, return_state=True)
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, training=False):
        x = self.embedding(inputs, training=training)
        x, _ = self.gru(x, training=training)
        return self.dense(x, training=training)


def char_rnn_tutorial(vocab: int, embedding: int, units: int, batch: int, seq_len: int) -> Arm:
    model = TutorialCharModel(vocab, embedding, units)
    optimizer = tf.keras.optimizers.Adam()
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(inp, target):  # the tutorial's "customized training" step
        with tf.GradientTape() as tape:
            predictions = model(inp, training=True)
            batch_loss = loss(target, predictions)
        grads = tape.gradient(batch_loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return batch_loss

    ids = tf.random.uniform((batch, seq_len + 1), 0, vocab, dtype=tf.int32)
    return Arm("tutorial (2021 text_generation)", "float32", batch, f"{seq_len} chars",
               lambda: float(train_step(ids[:, :-1], ids[:, 1:])),
               flops.char_rnn_step(batch, seq_len, embedding, units, vocab), tutorial=True)


def char_rnn_arms(quick: bool) -> list[Arm]:
    from trainers.char_rnn.config import TrainConfig
    from trainers.char_rnn.data import CharVocabulary
    from trainers.char_rnn.train import CharRNNRecipe

    vocab = 85  # the shipped checkpoint's vocabulary (checkpoints/char_rnn/config.json)
    config = TrainConfig()
    if quick:
        config = dataclasses.replace(config, batch_size=8, seq_len=20, rnn_units=128, embedding_dim=32)
    arms = [char_rnn_tutorial(vocab, 32 if quick else 256, 128 if quick else 1024, 8 if quick else 64,
                              20 if quick else 100)]
    for precision in project_precisions(config.precision):
        recipe = CharRNNRecipe(dataclasses.replace(config, precision=precision))
        recipe.vocabulary = CharVocabulary([chr(32 + i) for i in range(vocab - 1)])
        recipe.steps_per_epoch = 1000  # only shapes the learning-rate schedule
        with_policy(precision, recipe.build)
        step = tf.function(recipe.train_step)  # what trainers.common.run.fit compiles, without the strategy
        ids = tf.random.uniform((config.batch_size, config.seq_len + 1), 0, vocab, dtype=tf.int32)
        batch = (ids[:, :-1], ids[:, 1:])
        arms.append(Arm(f"project ({precision_label(config.precision, precision)})", precision, config.batch_size,
                        f"{config.seq_len} chars", lambda step=step, batch=batch: float(step(batch)["loss"]),
                        flops.char_rnn_step(config.batch_size, config.seq_len, config.embedding_dim,
                                            config.rnn_units, vocab)))
    return arms


# ---------------------------------------------------------------- DCGAN


def tutorial_generator():
    """The dcgan tutorial's make_generator_model()."""
    layers = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((100,)),
        layers.Dense(7 * 7 * 256, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"),
    ])


def tutorial_discriminator():
    """The dcgan tutorial's make_discriminator_model()."""
    layers = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"), layers.LeakyReLU(), layers.Dropout(0.3),
        layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"), layers.LeakyReLU(), layers.Dropout(0.3),
        layers.Flatten(), layers.Dense(1),
    ])


def dcgan_tutorial(batch: int) -> Arm:
    generator, discriminator = tutorial_generator(), tutorial_discriminator()
    cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer, discriminator_optimizer = tf.keras.optimizers.Adam(1e-4), tf.keras.optimizers.Adam(1e-4)
    noise_dim = 100

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch, noise_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
        return gen_loss

    images = tf.random.uniform((batch, 28, 28, 1), -1.0, 1.0)
    return Arm("tutorial (dcgan)", "float32", batch, "image pair", lambda: float(train_step(images)),
               flops.dcgan_step(flops.dcgan_tutorial_generator_forward(batch),
                                flops.dcgan_tutorial_discriminator_forward(batch)), tutorial=True)


def dcgan_arms(quick: bool) -> list[Arm]:
    from trainers.dcgan.config import TrainConfig
    from trainers.dcgan.train import DCGANRecipe

    config = TrainConfig()
    if quick:
        config = dataclasses.replace(config, batch_size=8)
    arms = [dcgan_tutorial(8 if quick else 256)]
    for precision in project_precisions(config.precision):
        recipe = DCGANRecipe(dataclasses.replace(config, precision=precision))
        with_policy(precision, recipe.build)
        step = tf.function(recipe.train_step)
        images = tf.random.uniform((config.batch_size, 28, 28, 1), -1.0, 1.0)
        noise = tf.random.normal((config.batch_size, config.latent_dim))
        counter = [0]

        def run(step=step, recipe=recipe, batch=(images, noise), counter=counter):
            result = float(step(batch)["d_loss"])
            counter[0] += 1
            recipe.after_step(counter[0])  # the served generator's moving average, as fit does after every step
            return result

        gan = config.model_config()
        arms.append(Arm(f"project ({precision_label(config.precision, precision)})", precision, config.batch_size,
                        "image pair", run, flops.dcgan_step(
                            flops.dcgan_project_generator_forward(config.batch_size, gan.latent_dim,
                                                                  gan.generator_filters, gan.kernel_size),
                            flops.dcgan_project_discriminator_forward(config.batch_size, gan.discriminator_filters,
                                                                      gan.kernel_size))))
    return arms


# ---------------------------------------------------------------- translation


class TutorialBahdanau(tf.keras.layers.Layer):
    """The 2019 tutorials' BahdanauAttention(units): W1 query + W2 values, at every decoder step."""

    def __init__(self, units):
        super().__init__()
        self.W1 = tf.keras.layers.Dense(units)
        self.W2 = tf.keras.layers.Dense(units)
        self.V = tf.keras.layers.Dense(1)

    def call(self, query, values):
        query_with_time_axis = tf.expand_dims(query, 1)
        score = self.V(tf.nn.tanh(self.W1(query_with_time_axis) + self.W2(values)))
        attention_weights = tf.nn.softmax(score, axis=1)
        context_vector = tf.reduce_sum(attention_weights * values, axis=1)
        return context_vector, attention_weights


def tutorial_gru(units):
    return tf.keras.layers.GRU(units, return_sequences=True, return_state=True, recurrent_initializer="glorot_uniform")


class TutorialEncoder(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim, enc_units):
        super().__init__()
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tutorial_gru(enc_units)

    def call(self, x, hidden):
        x = self.embedding(x)
        output, state = self.gru(x, initial_state=hidden)
        return output, state


class TutorialDecoder(tf.keras.Model):
    """The translation tutorial's Decoder, and with `fc1` the captioning tutorial's RNN_Decoder (they differ only
    in that hidden layer): attention with the previous state as query, [context; embedding] into a GRU that
    restarts from zeros at every word (as the tutorials wrote it, tensorflow#26990), then the vocabulary."""

    def __init__(self, vocab_size, embedding_dim, units, fc1: bool = False):
        super().__init__()
        self.units = units
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tutorial_gru(units)
        self.fc1 = tf.keras.layers.Dense(units) if fc1 else None
        self.fc = tf.keras.layers.Dense(vocab_size)
        self.attention = TutorialBahdanau(units)

    def call(self, x, hidden, values):
        context_vector, attention_weights = self.attention(hidden, values)
        x = self.embedding(x)
        x = tf.concat([tf.expand_dims(context_vector, 1), x], axis=-1)
        output, state = self.gru(x)
        if self.fc1 is not None:
            output = self.fc1(output)
        output = tf.reshape(output, (-1, output.shape[2]))
        return self.fc(output), state, attention_weights

    def reset_state(self, batch_size):
        return tf.zeros((batch_size, self.units))


def masked_loss_function():
    loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def loss_function(real, pred):
        mask = tf.math.logical_not(tf.math.equal(real, 0))
        loss_ = loss_object(real, pred)
        return tf.reduce_mean(loss_ * tf.cast(mask, dtype=loss_.dtype))

    return loss_function


def tutorial_attention_step(encoder, decoder, encode):
    """The train_step both attention tutorials wrote: `encode(source)` -> (values, first hidden state) under the
    tape, then teacher forcing in a Python loop over the target positions (unrolled by tf.function), the masked
    loss summed over them, Adam on the encoder's and decoder's variables; returns the loss per position."""
    optimizer = tf.keras.optimizers.Adam()
    loss_function = masked_loss_function()
    start = 1  # the <start> token's id

    @tf.function
    def train_step(source, target):
        loss = 0
        with tf.GradientTape() as tape:
            values, hidden = encode(source)
            dec_input = tf.expand_dims([start] * target.shape[0], 1)
            for t in range(1, target.shape[1]):
                predictions, hidden, _ = decoder(dec_input, hidden, values)
                loss += loss_function(target[:, t], predictions)
                dec_input = tf.expand_dims(target[:, t], 1)
        batch_loss = loss / int(target.shape[1])
        variables = encoder.trainable_variables + decoder.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return batch_loss

    return train_step


def nmt_tutorial(batch, source_vocab, target_vocab, embedding, units, source_len, target_len) -> Arm:
    encoder = TutorialEncoder(source_vocab, embedding, units)
    decoder = TutorialDecoder(target_vocab, embedding, units)
    hidden = tf.zeros((batch, units))  # encoder.initialize_hidden_state()
    train_step = tutorial_attention_step(encoder, decoder, lambda inp: encoder(inp, hidden))

    rng = np.random.default_rng(0)
    inp = tf.constant(rng.integers(1, source_vocab, (batch, source_len)), tf.int32)
    targ = tf.constant(rng.integers(1, target_vocab, (batch, target_len)), tf.int32)
    return Arm("tutorial (nmt_with_attention)", "float32", batch, f"{source_len}->{target_len} words",
               lambda: float(train_step(inp, targ)),
               flops.nmt_tutorial_step(batch, source_len, target_len, embedding, units, target_vocab), tutorial=True)


def nmt_arms(quick: bool, length: int) -> list[Arm]:
    from trainers.nmt.config import TrainConfig
    from trainers.nmt.model import Seq2SeqConfig, build
    from trainers.nmt.train import BUCKETS, WarmupEpochDecay, make_train_step

    config = TrainConfig()
    vocab = config.vocab_size
    if quick:
        config, vocab, length = dataclasses.replace(config, batch_size=8), 500, 6
    arms = [nmt_tutorial(8, 500, 300, 32, 64, 6, 5) if quick else nmt_tutorial(64, 9414, 4935, 256, 1024, 16, 11)]
    for precision in project_precisions(config.precision):
        def build_arm():
            # The shape NMTRecipe.model_config gives (the shipped checkpoint: 8,000 pieces on both sides).
            model = build(Seq2SeqConfig(vocab, vocab, config.embedding_dim, config.encoder_units,
                                        config.decoder_units, config.attention_units, config.dropout,
                                        max_source_len=2 * BUCKETS[-1], max_target_len=2 * BUCKETS[-1]))
            optimizer = keras.optimizers.Adam(WarmupEpochDecay(config.learning_rate, config.lr_decay,
                                                               config.warmup_steps, 1000))
            return model, make_train_step(model, optimizer, config.clip_norm, eager=False)

        _, step = with_policy(precision, build_arm)
        rng = np.random.default_rng(0)
        source = tf.constant(rng.integers(4, vocab, (config.batch_size, length)), tf.int32)
        target = rng.integers(4, vocab, (config.batch_size, length))
        decoder_input = tf.constant(np.concatenate([np.full((config.batch_size, 1), 2), target[:, :-1]], 1),
                                    tf.int32)
        target = tf.constant(target, tf.int32)
        arms.append(Arm(f"project ({precision_label(config.precision, precision)})", precision, config.batch_size,
                        f"{length}->{length} pieces",
                        lambda step=step, batch=(source, decoder_input, target): float(step(*batch)["loss"]),
                        flops.nmt_project_step(config.batch_size, length, length, config.embedding_dim,
                                               config.encoder_units, config.decoder_units, config.attention_units,
                                               vocab)))
    return arms


# ---------------------------------------------------------------- captioning


class TutorialCNNEncoder(tf.keras.Model):
    def __init__(self, embedding_dim):
        super().__init__()
        self.fc = tf.keras.layers.Dense(embedding_dim)

    def call(self, x):
        return tf.nn.relu(self.fc(x))


def captioning_tutorial(batch, caption_len, locations, depth, embedding, units, vocab) -> Arm:
    encoder, decoder = TutorialCNNEncoder(embedding), TutorialDecoder(vocab, embedding, units, fc1=True)
    train_step = tutorial_attention_step(encoder, decoder,
                                         lambda img_tensor: (encoder(img_tensor), decoder.reset_state(batch)))

    rng = np.random.default_rng(0)
    features = tf.constant(rng.random((batch, locations, depth), np.float32))
    target = tf.constant(rng.integers(1, vocab, (batch, caption_len)), tf.int32)
    return Arm("tutorial (image_captioning)", "float32", batch, f"{caption_len} tokens",
               lambda: float(train_step(features, target)),
               flops.captioning_tutorial_step(batch, caption_len, locations, depth, embedding, units, vocab),
               tutorial=True)


def captioning_arms(quick: bool, caption_len: int) -> list[Arm]:
    from trainers.captioning.config import TrainConfig
    from trainers.captioning.model import ShowAttendTellConfig, build
    from trainers.captioning.train import learning_rate_schedule, make_train_step

    config = TrainConfig()
    vocab, locations, depth = 108, 49, 1024  # the shipped checkpoint (checkpoints/captioning/config.json)
    if quick:
        config = dataclasses.replace(config, batch_size=8, max_len=5)
    arms = [captioning_tutorial(8, 5, 64, 2048, 256, 512, 500) if quick
            else captioning_tutorial(64, caption_len, 64, 2048, 256, 512, 5001)]
    for precision in project_precisions(config.precision):
        def build_arm():
            model = build(ShowAttendTellConfig(vocab, locations, depth, config.embedding_dim, config.units,
                                               config.attention_units, config.dropout))
            optimizer = keras.optimizers.Adam(learning_rate_schedule(config, 1000))
            return model, make_train_step(model, optimizer, config.clip_norm, eager=False)

        _, step = with_policy(precision, build_arm)
        rng = np.random.default_rng(0)
        features = tf.constant(rng.random((config.batch_size, locations, depth), np.float32))
        ids = rng.integers(4, vocab, (config.batch_size, config.max_len + 1))
        ids[:, 0] = 1
        ids = tf.constant(ids, tf.int32)
        batch = (features, ids[:, :-1], ids[:, 1:])  # what CaptioningRecipe.train_step hands the update
        arms.append(Arm(f"project ({precision_label(config.precision, precision)})", precision, config.batch_size,
                        f"{config.max_len + 1} tokens", lambda step=step, batch=batch: float(step(*batch)["loss"]),
                        flops.captioning_project_step(config.batch_size, config.max_len, locations, depth,
                                                      config.embedding_dim, config.units, config.attention_units,
                                                      vocab)))
    return arms


# ---------------------------------------------------------------- the run


def verdict(value: float, goal: float) -> str:
    return "met" if value >= goal else "NOT met"


def report(model: str, arms: list[Arm], seconds: dict[str, list[float]], rounds: int, peaks: dict) -> list[str]:
    """Prints the model's table and ratios; returns one summary line per project arm."""
    print(f"\n{model}: best of {rounds} rounds (median in brackets)")
    print(f"{'arm':36s} {'precision':15s} {'batch':>5s} {'example':>16s} {'s/step':>15s} {'examples/s':>10s} "
          f"{'GFLOP/step':>10s} {'GFLOP/s':>8s}")
    rates = {}
    for arm in arms:
        best, median = min(seconds[arm.name]), statistics.median(seconds[arm.name])
        rates[arm.name] = (arm.batch / best, arm.step_flops / best)
        print(f"{arm.name:36s} {arm.precision:15s} {arm.batch:5d} {arm.shape:>16s} {best:7.3f} ({median:5.3f}) "
              f"{arm.batch / best:10.1f} {arm.step_flops / 1e9:10.1f} {arm.step_flops / best / 1e9:8.1f}")
    tutorial = next(arm for arm in arms if arm.tutorial)
    base_examples, base_flops = rates[tutorial.name]
    lines = []
    for arm in arms:
        if arm.tutorial:
            continue
        examples, achieved = rates[arm.name]
        line = (f"{model} {arm.name}: examples/s {examples / base_examples:.2f}x the tutorial (goal >= "
                f"{GOAL_EXAMPLES:g}x: {verdict(examples / base_examples, GOAL_EXAMPLES)}), FLOP/s "
                f"{achieved / base_flops:.2f}x (goal >= {GOAL_FLOPS:g}x: {verdict(achieved / base_flops, GOAL_FLOPS)})")
        if model == "char_rnn":
            peak = peaks["mixed_bfloat16" if "bfloat16" in arm.precision else "float32"]
            line += (f", {achieved / peak:.1%} of the {arm.precision} matmul peak (goal >= {GOAL_PEAK:.0%}: "
                     f"{verdict(achieved / peak, GOAL_PEAK)})")
        print("  " + line.split(": ", 1)[1])
        lines.append(line)
    return lines


def build_arms(model: str, args) -> list[Arm]:
    keras.utils.set_random_seed(0)
    if model == "char_rnn":
        return char_rnn_arms(args.quick)
    if model == "dcgan":
        return dcgan_arms(args.quick)
    if model == "nmt":
        return nmt_arms(args.quick, args.nmt_length)
    return captioning_arms(args.quick, args.caption_len)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per arm in each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--nmt-length", type=int, default=18,
                        help="the project's padded source and target length (its second bucket, in subword pieces)")
    parser.add_argument("--caption-len", type=int, default=20, help="the tutorial's padded caption length (tokens)")
    args = parser.parse_args(argv)
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in models if name not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    print(describe_cpu(probe=True))
    print(f"TF {tf.__version__}, Keras {keras.__version__}; {args.steps} timed steps per arm per round, "
          f"{args.rounds} rounds{', QUICK (small sizes)' if args.quick else ''}")
    peaks = {}
    if "char_rnn" in models:
        size = 256 if args.quick else 2048
        peaks = {"float32": matmul_peak(tf.float32, size), "mixed_bfloat16": matmul_peak(tf.bfloat16, size)}
        print(f"matmul peak ({size}^2, this run): float32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bfloat16 "
              f"{peaks['mixed_bfloat16'] / 1e9:.0f} GFLOP/s")
    summary = []
    for model in models:
        arms = build_arms(model, args)
        seconds = alternating_rounds({arm.name: arm.step for arm in arms}, args.steps, args.rounds)
        summary += report(model, arms, seconds, args.rounds, peaks)
    print("\nsummary (project / tutorial, same run):")
    for line in summary:
        print("  " + line)


if __name__ == "__main__":
    main()
