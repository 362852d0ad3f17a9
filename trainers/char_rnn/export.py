"""Export the character-level GRU as a SavedModel whose `generate` signature writes text in the graph.

    python -m trainers.char_rnn.export [--checkpoint checkpoints/char_rnn] --out exported/char_rnn/1

Signature `generate` (also the default, `serving_default`): prompt (string), length (int32, at most
MAX_EXPORT_LENGTH), temperature (float32; 0 is greedy), seed (int64) -> text (string), the `length` characters
after the prompt. The prompt is split into characters and looked up in the graph (a character the model does not
know becomes its unknown id, as in the app); then the same chunked in-graph sampler as the Text tab reads the
prompt (its characters forced) and writes the text, CHUNK characters per loop turn (`generate.make_chunk_sampler`),
without XLA so that any TensorFlow runtime can serve it, multiplying in whole numbers as the app's float32 generator
does (`generate.whole_numbers`: the weights folded and rounded once, saved as constants beside the model's variables).
Greedy text equals the app's float32 text, and so does sampled text for a seed (the app runs without XLA too).
"""

from __future__ import annotations

from pathlib import Path

MAX_EXPORT_LENGTH = 10_000


SIGNATURE = "generate"  # also served as serving_default


def build(folder: Path):
    import tensorflow as tf

    from trainers.char_rnn.generate import CHUNK, make_chunk_sampler
    from trainers.char_rnn.model import load

    model, vocabulary = load(Path(folder))
    sample_chunk = make_chunk_sampler(model, alternatives=1, chunk=CHUNK, jit_compile=False, matmul_dtype="whole",
                                      frozen=True)
    characters = list(vocabulary.characters)
    newline = vocabulary.index.get("\n", 0)

    class TextExport(tf.Module):
        def __init__(self):
            super().__init__(name="char_rnn")
            self.model = model
            self.characters = tf.constant(characters)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(characters), tf.range(len(characters), dtype=tf.int32)),
                default_value=0)

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="prompt"),
                                      tf.TensorSpec([], tf.int32, name="length"),
                                      tf.TensorSpec([], tf.float32, name="temperature"),
                                      tf.TensorSpec([], tf.int64, name="seed")])
        def generate(self, prompt, length, temperature, seed):
            length = tf.clip_by_value(length, 0, MAX_EXPORT_LENGTH)
            ids = self.table.lookup(tf.strings.unicode_split(prompt, "UTF-8"))
            ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.constant([newline], tf.int32))
            read = tf.size(ids)
            # The loop turns read the prompt first, then write: the output's first `read` ids are the prompt's.
            chunks = (read + length + CHUNK - 1) // CHUNK
            prompt = tf.pad(ids, [[0, chunks * CHUNK - read]])

            def rows(value):  # one row: in whole numbers a row's numbers are the same alone as in a batch
                return value[None]

            logits = tf.zeros([1, model.config.vocab_size])  # not read: the prompt's first character is forced
            state = tf.zeros([1, model.config.rnn_units])

            def body(i, logits, state, written):
                start = i * CHUNK
                forced = tf.clip_by_value(read - start, 0, CHUNK)  # prompt characters this turn reads
                position = tf.cast(start + forced - read, tf.int64)  # drawn characters before this turn's first
                chosen, _, _, _, logits, state = sample_chunk(
                    logits, state, rows(temperature), rows(tf.constant(0)), rows(tf.constant(1.0)), rows(seed),
                    rows(position), rows(tf.ensure_shape(prompt[start:start + CHUNK], [CHUNK])), rows(forced))
                # The sampler's batch axis is unknown to the graph; the loop needs the one row it carries.
                logits, state = tf.ensure_shape(logits, [1, None]), tf.ensure_shape(state, [1, None])
                return i + 1, logits, state, written.write(i, chosen[0])

            _, _, _, written = tf.while_loop(
                lambda i, *_: i < chunks, body,
                (tf.constant(0), logits, state, tf.TensorArray(tf.int32, size=0, dynamic_size=True,
                                                                element_shape=[CHUNK])))
            out = tf.reshape(written.stack(), [-1])[read:read + length]
            return {"text": tf.strings.reduce_join(tf.gather(self.characters, out))}

    return TextExport()


def main(argv=None) -> None:
    from trainers.common import export

    export.main("char_rnn", build, SIGNATURE, argv, __doc__)


if __name__ == "__main__":
    main()
