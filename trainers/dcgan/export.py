"""Export the DCGAN generator as a SavedModel whose signatures turn latent vectors into digits in the graph.

    python -m trainers.dcgan.export [--checkpoint checkpoints/dcgan] --out exported/dcgan/1

Signatures: `images` (also `serving_default`): latent (float32, (n, latent_dim)) -> images (uint8, (n, 28, 28)),
pixels as the Digits tab shows them, and `pixels` (float32 in [-1, 1], (n, 28, 28, 1)), the generator's own
output. The latent vectors of a seed are NumPy's (`model.latent_vectors`), so a client that wants the tab's
digits for a seed draws them the same way. The served (weight-averaged) generator, in float32.
"""

from __future__ import annotations

from pathlib import Path


SIGNATURE = "images"  # also served as serving_default


def build(folder: Path):
    import tensorflow as tf

    from trainers.dcgan.model import load

    generator, config = load(Path(folder))

    class DigitsExport(tf.Module):
        def __init__(self):
            super().__init__(name="dcgan")
            self.generator = generator

        @tf.function(input_signature=[tf.TensorSpec([None, config.latent_dim], tf.float32, name="latent")])
        def images(self, latent):
            pixels = tf.cast(self.generator(latent, training=False), tf.float32)  # (n, 28, 28, 1) in [-1, 1]
            as_bytes = tf.cast(tf.round(tf.clip_by_value((pixels + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
            return {"images": as_bytes[..., 0], "pixels": pixels}

    return DigitsExport()


def main(argv=None) -> None:
    from trainers.common import export

    export.main("dcgan", build, SIGNATURE, argv, __doc__)


if __name__ == "__main__":
    main()
