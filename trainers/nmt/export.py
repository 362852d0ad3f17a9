"""Export the Spanish -> English translator as a SavedModel whose `translate_ids` signature decodes greedily in the
graph.

    python -m trainers.nmt.export [--checkpoint checkpoints/nmt] --out exported/nmt/1

Signature `translate_ids` (also `serving_default`): source_ids (int32, (n,)): the domain tag and the Spanish
SentencePiece ids, as `Translator.source_ids` makes them -> ids (int32, (m,)): the English piece ids of the greedy
translation, without the end token. Decoding is the app's: <pad>, <start>, <unk> and the domain tags are never
written, a piece that continues a word is never written twice in a row, and the output stops at the end token or
at min(max_target_len, 2 n + 8) pieces. The SentencePiece model travels with the export
(`assets/subword.model`): a client splits and joins text with the `sentencepiece` package. Strings in, strings
out would need SentencePiece inside the graph (tensorflow-text), which this project does not install; names keep
their capitals only in the app (casing.json is applied in Python).
"""

from __future__ import annotations

from pathlib import Path


SIGNATURE = "translate_ids"  # also served as serving_default


def build(folder: Path):
    import tensorflow as tf

    from trainers.nmt.subword import MODEL_FILE
    from trainers.nmt.translate import Translator

    translator = Translator.load(Path(folder))
    model, tokenizer = translator.model, translator.tokenizer
    penalty = translator._forbidden  # (vocab,) -1e9 for the ids never written
    no_repeat = translator._no_repeat  # (vocab,) -1e9 for word-continuing pieces

    class TranslateExport(tf.Module):
        def __init__(self):
            super().__init__(name="nmt")
            # The variables, not the Keras model: saving a model would trace its call() with one input.
            self.model_variables = list(model.weights)
            self.subword_model = tf.saved_model.Asset(str(Path(folder) / MODEL_FILE))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="source_ids")])
        def translate_ids(self, source_ids):
            source = source_ids[: model.config.max_source_len][None]  # (1, n)
            keys, mask, state, projected = model.encode(source, training=False)
            max_len = tf.minimum(model.config.max_target_len, 2 * tf.shape(source)[1] + 8)

            def body(i, token, state, done, written):
                log_probs, state, _ = model.decode_step(token, state, keys, mask, projected)
                log_probs = tf.cast(log_probs, tf.float32) + penalty + tf.one_hot(token, tokenizer.size) * no_repeat
                token = tf.cast(tf.argmax(log_probs, axis=-1), tf.int32)  # (1,)
                done = tf.logical_or(done, tf.equal(token[0], tokenizer.end))
                written = tf.cond(done, lambda: written, lambda: written.write(written.size(), token[0]))
                return i + 1, token, state, done, written

            _, _, _, _, written = tf.while_loop(
                lambda i, token, state, done, written: tf.logical_and(i < max_len, tf.logical_not(done)), body,
                (tf.constant(0), tf.constant([tokenizer.start], tf.int32), state, tf.constant(False),
                 tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[])))
            return {"ids": written.stack()}

    return TranslateExport()


def main(argv=None) -> None:
    from trainers.common import export

    export.main("nmt", build, SIGNATURE, argv, __doc__)


if __name__ == "__main__":
    main()
