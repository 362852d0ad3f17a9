"""Export the captioner as a SavedModel whose `caption` signature captions JPEG/PNG bytes in the graph.

    python -m trainers.captioning.export [--checkpoint checkpoints/captioning] --out exported/captioning/1

Signature `caption` (also `serving_default`): image (string: the bytes of a JPEG, PNG, GIF or BMP file) ->
caption (string), words (string, (m,)) and attention (float32, (m, locations)): greedy decoding, as the app's
default. In the graph: decode (first frame, 3 channels), squash to 224 x 224, MobileNet's [-1, 1] scale, the
MobileNet feature map, then the attention decoder word by word until <end> or max_len words. The app's resize is
Pillow's bilinear filter (after EXIF rotation and a cheap shrink of huge pictures); the graph uses TensorFlow's
antialiased bilinear resize and reads no EXIF, so for pictures that are not already 224 x 224 the features differ
slightly from the app's and a caption can differ in a word.
"""

from __future__ import annotations

from pathlib import Path


SIGNATURE = "caption"  # also served as serving_default


def build(folder: Path):
    import tensorflow as tf

    from trainers.captioning.caption import Captioner
    from trainers.captioning.encoder import IMAGE_SIZE

    captioner = Captioner.load(Path(folder))
    encoder, model, vocabulary = captioner.encoder.feature_model, captioner.model, captioner.vocabulary
    max_len = captioner.max_len

    class CaptionExport(tf.Module):
        def __init__(self):
            super().__init__(name="captioning")
            # Variables only, not the Keras models: saving a model would trace its call() with one input.
            self.model_variables = list(encoder.weights) + list(model.weights)
            self.words = tf.constant(list(vocabulary.words))

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image")])
        def caption(self, image):
            pixels = tf.io.decode_image(image, channels=3, expand_animations=False)  # (h, w, 3) uint8
            pixels = tf.cast(pixels, tf.float32)
            resized = tf.image.resize(pixels[None], (IMAGE_SIZE, IMAGE_SIZE), method="bilinear", antialias=True)
            resized = tf.round(tf.clip_by_value(resized, 0.0, 255.0))  # the app feeds uint8 pixels
            maps = encoder(resized / 127.5 - 1.0, training=False)  # (1, 7, 7, depth)
            features = tf.reshape(maps, (1, -1, maps.shape[-1]))
            keys, projected, state = model.encode(features)

            def body(i, token, state, done, ids, weights_seen):
                logits, state, weights = model.step(keys, projected, token, state)
                token = tf.cast(tf.argmax(logits, axis=-1), tf.int32)  # (1,)
                done = tf.logical_or(done, tf.equal(token[0], vocabulary.end))
                ids, weights_seen = tf.cond(done, lambda: (ids, weights_seen),
                                            lambda: (ids.write(ids.size(), token[0]),
                                                     weights_seen.write(weights_seen.size(), weights[0])))
                return i + 1, token, state, done, ids, weights_seen

            _, _, _, _, ids, weights_seen = tf.while_loop(
                lambda i, token, state, done, *_: tf.logical_and(i < max_len, tf.logical_not(done)), body,
                (tf.constant(0), tf.constant([vocabulary.start], tf.int32), state, tf.constant(False),
                 tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[]),
                 tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[features.shape[1]])))
            ids = ids.stack()
            keep = tf.logical_and(tf.not_equal(ids, 0), tf.not_equal(ids, vocabulary.start))  # as decode() drops
            words = tf.gather(self.words, tf.boolean_mask(ids, keep))
            return {"caption": tf.strings.reduce_join(words, separator=" "), "words": words,
                    "attention": tf.boolean_mask(tf.reshape(weights_seen.stack(), (-1, features.shape[1])), keep)}

    return CaptionExport()


def main(argv=None) -> None:
    from trainers.common import export

    export.main("captioning", build, SIGNATURE, argv, __doc__)


if __name__ == "__main__":
    main()
