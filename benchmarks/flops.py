"""Analytic FLOP counts of one training step of each model (no TensorFlow here).

Convention, the same for every model and every arm: a multiply-add is 2 FLOPs; only the matrix products are
counted (dense layers, GRU gates, convolutions, attention scores and weighted sums); element-wise work (biases,
activations, batch norm, softmax, the loss, the optimizer update) and embedding lookups are left out. One training
step is counted as 3x its forward pass: the backward pass costs about twice the forward (one product for the
gradient of the inputs and one for the gradient of the weights). What is counted is the work the step as written
executes, redundant work included (the 2018 tutorials' attention re-projects its keys at every decoder step).

Every function returns FLOPs of one *training step* at the given batch; `*_forward` helpers return the forward
multiply-adds x 2 of one layer or block, and are what tests/test_benchmarks.py checks against `tf.profiler`.
"""

from __future__ import annotations

TRAIN_FACTOR = 3.0  # forward + backward (about twice the forward)


def dense_forward(rows: int, inputs: int, outputs: int) -> float:
    """A dense layer (or matmul) on `rows` vectors: rows x inputs x outputs multiply-adds."""
    return 2.0 * rows * inputs * outputs


def gru_forward(rows: int, inputs: int, units: int) -> float:
    """One GRU step on `rows` vectors: the three gates' input kernel (inputs x 3 units) and recurrent kernel
    (units x 3 units)."""
    return dense_forward(rows, inputs, 3 * units) + dense_forward(rows, units, 3 * units)


def conv_forward(batch: int, out_height: int, out_width: int, in_channels: int, out_channels: int,
                 kernel: int) -> float:
    """A 2-D convolution: every output pixel and channel is a kernel x kernel x in_channels dot product."""
    return 2.0 * batch * out_height * out_width * out_channels * in_channels * kernel * kernel


def conv_transpose_forward(batch: int, in_height: int, in_width: int, in_channels: int, out_channels: int,
                           kernel: int) -> float:
    """A transposed 2-D convolution: every *input* pixel is scattered through a kernel x kernel x out_channels
    filter (the gradient of a convolution whose output is this layer's input)."""
    return 2.0 * batch * in_height * in_width * in_channels * out_channels * kernel * kernel


def bahdanau_forward(batch: int, locations: int, key_depth: int, attention_units: int, query_depth: int,
                     project_keys: bool) -> float:
    """One additive-attention step: W2 query, V tanh(...) over every location, the weighted sum of the keys; with
    `project_keys`, also W1 keys (the tutorials do it at every step, the project once per sequence)."""
    flops = dense_forward(batch, query_depth, attention_units)  # W2 query
    flops += dense_forward(batch * locations, attention_units, 1)  # V scores
    flops += 2.0 * batch * locations * key_depth  # context = sum_j weights_j keys_j
    if project_keys:
        flops += dense_forward(batch * locations, key_depth, attention_units)  # W1 keys
    return flops


# ---------------------------------------------------------------- char-RNN


def char_rnn_step(batch: int, seq_len: int, embedding: int, units: int, vocab: int) -> float:
    """Embedding -> GRU -> Dense(vocab) over batch x seq_len characters (the tutorial's and the project's)."""
    rows = batch * seq_len
    return TRAIN_FACTOR * (gru_forward(rows, embedding, units) + dense_forward(rows, units, vocab))


# ---------------------------------------------------------------- DCGAN


def dcgan_tutorial_generator_forward(batch: int, latent: int = 100) -> float:
    """The 2019 tutorial's generator: Dense(7*7*256) -> ConvT(128, 5, s1) -> ConvT(64, 5, s2) -> ConvT(1, 5, s2)."""
    return (dense_forward(batch, latent, 7 * 7 * 256)
            + conv_transpose_forward(batch, 7, 7, 256, 128, 5)
            + conv_transpose_forward(batch, 7, 7, 128, 64, 5)
            + conv_transpose_forward(batch, 14, 14, 64, 1, 5))


def dcgan_tutorial_discriminator_forward(batch: int) -> float:
    """The tutorial's discriminator: Conv(64, 5, s2) -> Conv(128, 5, s2) -> Dense(1) on 28x28x1 images."""
    return (conv_forward(batch, 14, 14, 1, 64, 5) + conv_forward(batch, 7, 7, 64, 128, 5)
            + dense_forward(batch, 7 * 7 * 128, 1))


def dcgan_project_generator_forward(batch: int, latent: int, filters: int, kernel: int) -> float:
    """trainers.dcgan.model.Generator: Dense(7*7*f) -> ConvT(f/2, k, s2) -> ConvT(f/4, k, s2) -> Conv(1, k)."""
    return (dense_forward(batch, latent, 7 * 7 * filters)
            + conv_transpose_forward(batch, 7, 7, filters, filters // 2, kernel)
            + conv_transpose_forward(batch, 14, 14, filters // 2, filters // 4, kernel)
            + conv_forward(batch, 28, 28, filters // 4, 1, kernel))


def dcgan_project_discriminator_forward(batch: int, filters: int, kernel: int) -> float:
    """trainers.dcgan.model.Discriminator: Conv(f, k, s2) -> Conv(2f, k, s2) -> Dense(1)."""
    return (conv_forward(batch, 14, 14, 1, filters, kernel) + conv_forward(batch, 7, 7, filters, 2 * filters, kernel)
            + dense_forward(batch, 7 * 7 * 2 * filters, 1))


def dcgan_step(generator_forward: float, discriminator_forward: float) -> float:
    """One adversarial step: the generator once and the discriminator twice (real and generated batch), each
    forward and backward."""
    return TRAIN_FACTOR * (generator_forward + 2 * discriminator_forward)


# ---------------------------------------------------------------- translation


def nmt_tutorial_step(batch: int, source_len: int, target_len: int, embedding: int, units: int,
                      target_vocab: int) -> float:
    """The 2018/2019 nmt_with_attention step: GRU encoder over source_len words; then target_len - 1 decoder
    steps, each Bahdanau attention (units; W1 and W2 at every step) over the encoder outputs, a GRU step on
    [context; embedding] and Dense(target_vocab)."""
    encoder = source_len * gru_forward(batch, embedding, units)
    decoder_step = (bahdanau_forward(batch, source_len, units, units, units, project_keys=True)
                    + gru_forward(batch, units + embedding, units) + dense_forward(batch, units, target_vocab))
    return TRAIN_FACTOR * (encoder + (target_len - 1) * decoder_step)


def nmt_project_step(batch: int, source_len: int, target_len: int, embedding: int, encoder_units: int,
                     decoder_units: int, attention_units: int, target_vocab: int) -> float:
    """trainers.nmt.model.AttentionSeq2Seq under teacher forcing: a bidirectional GRU encoder, the bridge to the
    decoder's start state, the keys projected once, then target_len decoder steps (attention, GRU cell on
    [embedding; context], the tanh bottleneck) and one Dense(target_vocab) over all positions."""
    keys = 2 * encoder_units
    encoder = 2 * source_len * gru_forward(batch, embedding, encoder_units) + dense_forward(batch, keys,
                                                                                           decoder_units)
    encoder += dense_forward(batch * source_len, keys, attention_units)  # W1 keys, once per sentence
    decoder_step = (bahdanau_forward(batch, source_len, keys, attention_units, decoder_units, project_keys=False)
                    + gru_forward(batch, embedding + keys, decoder_units)
                    + dense_forward(batch, decoder_units + keys, embedding))
    logits = dense_forward(batch * target_len, embedding, target_vocab)
    return TRAIN_FACTOR * (encoder + target_len * decoder_step + logits)


# ---------------------------------------------------------------- captioning


def captioning_tutorial_step(batch: int, caption_len: int, locations: int = 64, feature_depth: int = 2048,
                             embedding: int = 256, units: int = 512, vocab: int = 5001) -> float:
    """The 2018/2019 image_captioning step: CNN_Encoder Dense(embedding) over the cached features, then
    caption_len - 1 decoder steps, each Bahdanau attention (units; W1 features at every step), a GRU step on
    [context; embedding], fc1 Dense(units) and fc2 Dense(vocab)."""
    encoder = dense_forward(batch * locations, feature_depth, embedding)
    decoder_step = (bahdanau_forward(batch, locations, embedding, units, units, project_keys=True)
                    + gru_forward(batch, 2 * embedding, units) + dense_forward(batch, units, units)
                    + dense_forward(batch, units, vocab))
    return TRAIN_FACTOR * (encoder + (caption_len - 1) * decoder_step)


def captioning_project_step(batch: int, caption_len: int, locations: int, feature_depth: int, embedding: int,
                            units: int, attention_units: int, vocab: int) -> float:
    """trainers.captioning.model.ShowAttendTell under teacher forcing over caption_len words: the feature
    projection, the keys projected once, the initial state; per word attention, a GRU cell on
    [embedding; context], Dense(units) and Dense(vocab)."""
    encoder = (dense_forward(batch * locations, feature_depth, embedding)
               + dense_forward(batch * locations, embedding, attention_units) + dense_forward(batch, embedding, units))
    decoder_step = (bahdanau_forward(batch, locations, embedding, attention_units, units, project_keys=False)
                    + gru_forward(batch, 2 * embedding, units) + dense_forward(batch, units, units)
                    + dense_forward(batch, units, vocab))
    return TRAIN_FACTOR * (encoder + caption_len * decoder_step)
