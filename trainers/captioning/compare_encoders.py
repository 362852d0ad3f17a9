"""Which encoder's features tell the photo-like pictures' objects apart better: a linear probe, on validation data.

    python -m trainers.captioning.compare_encoders [--train 1500] [--val 400]

The two candidates the issue names: the ImageNet MobileNet v1 the captioner ships (`conv_pw_13_relu`, 7x7x1024 at
224 px, from the feature cache) and the COCO detector's MobileNet-v2 backbone (`FeatureExtractor/MobilenetV2/
Conv_1/Relu6`, 10x10x1280 at 300 px, run here). For each, a logistic regression (scikit-learn) learns the main
object's class from the mean-pooled features of photo-like *training* pictures and is scored on the photo-like
*validation* pictures (held-out backgrounds). The real-photo evaluation set is not used. Prints one JSON line per
encoder (accuracy, top-3 accuracy, seconds per picture).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def detector_backbone():
    """A function (batch of uint8 pictures) -> (batch, 1280) mean-pooled backbone features of the COCO detector."""
    import tensorflow as tf
    from PIL import Image

    from trainers.captioning import detector

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(detector.graph_path().read_bytes())

    def imported(image_tensor):
        tf.compat.v1.import_graph_def(graph_def, name="", input_map={"image_tensor:0": image_tensor})

    wrapped = tf.compat.v1.wrap_function(imported, [tf.TensorSpec((1, None, None, 3), tf.uint8)])
    output = wrapped.graph.get_tensor_by_name("FeatureExtractor/MobilenetV2/Conv_1/Relu6:0")
    run = wrapped.prune(wrapped.inputs, [output])

    def features(images):
        rows = []
        for image in images:
            resized = np.asarray(Image.fromarray(image).resize((300, 300), Image.BILINEAR), np.uint8)
            rows.append(run(tf.constant(resized[None]))[0].numpy().mean(axis=(0, 1, 2)))
        return np.stack(rows)

    return features


def probe(train_x, train_y, val_x, val_y) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(max_iter=2000, C=0.5).fit(scaler.transform(train_x), train_y)
    probabilities = model.predict_proba(scaler.transform(val_x))
    top = np.argsort(-probabilities, axis=1)[:, :3]
    classes = model.classes_
    top1 = float(np.mean(classes[top[:, 0]] == val_y))
    top3 = float(np.mean([label in classes[row] for label, row in zip(val_y, top)]))
    return {"accuracy": round(top1, 4), "top3_accuracy": round(top3, 4)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=1500)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="")
    args = parser.parse_args(argv)
    from trainers.captioning import data, photos

    root = data.photo_cache_root(args.seed, args.cache_dir)
    train_features, train_records = data.load_split(root, "train", args.train)
    val_features, val_records = data.load_split(root, "val", args.val)
    train_y = np.array([record["groups"][0]["noun"] for record in train_records])
    val_y = np.array([record["groups"][0]["noun"] for record in val_records])
    pooled = lambda features: np.asarray(features, np.float32).mean(axis=1)  # noqa: E731
    print(json.dumps({"encoder": "ImageNet MobileNet v1 conv_pw_13_relu (7x7x1024, 224 px)",
                      **probe(pooled(train_features), train_y, pooled(val_features), val_y),
                      "train": len(train_y), "val": len(val_y)}), flush=True)
    generator = photos.PhotoGenerator(args.seed)
    backbone = detector_backbone()
    started = time.monotonic()
    train_x = backbone([generator.scene("train", index)[0] for index in range(args.train)])
    val_x = backbone([generator.scene("val", index)[0] for index in range(args.val)])
    seconds = (time.monotonic() - started) / (args.train + args.val)
    print(json.dumps({"encoder": "COCO SSD MobileNet-v2 backbone Conv_1 (10x10x1280, 300 px)",
                      **probe(train_x, train_y, val_x, val_y), "train": len(train_y), "val": len(val_y),
                      "seconds_per_picture_with_drawing": round(seconds, 3)}), flush=True)


if __name__ == "__main__":
    main()
