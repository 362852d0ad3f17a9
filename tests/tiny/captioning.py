"""A tiny, untrained captioning checkpoint for app tests: a tiny random CNN encoder and a small decoder.

It needs neither the converted MobileNet nor the picture packages, so the app tests stay fast and offline.
"""

from pathlib import Path

MODEL = "captioning"
CAPTIONS = ["a big red car to the left of two small dogs", "two small dogs to the right of a big red car",
            "a small cat above a big tree", "there is a big blue ball", "a picture of three small apples"]


def make(folder: Path) -> Path:
    import keras
    import numpy as np
    from PIL import Image

    from trainers.captioning import data, encoder as encoder_module
    from trainers.captioning.model import ShowAttendTellConfig, build, save

    keras.utils.set_random_seed(0)
    folder = Path(folder)
    encoder = encoder_module.tiny_random(seed=0, depth=16)
    vocabulary = data.CaptionVocabulary.from_captions(CAPTIONS)
    config = ShowAttendTellConfig(vocab_size=vocabulary.size, locations=encoder.locations, feature_depth=encoder.depth,
                             embedding_dim=16, units=32, attention_units=16, dropout=0.0)
    model = build(config)
    staging = folder.parent / f".{folder.name}-staging"
    staging.mkdir(parents=True, exist_ok=True)
    encoder_file = staging / encoder_module.ENCODER_WEIGHTS_FILE
    encoder.feature_model.save_weights(str(encoder_file))
    examples = staging / "examples"
    examples.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(examples / f"test_{index:05d}.jpg")
    run_config = {"decoder": {"vocab_size": config.vocab_size, "locations": config.locations,
                              "feature_depth": config.feature_depth, "embedding_dim": 16, "units": 32,
                              "attention_units": 16, "dropout": 0.0},
                  "encoder": encoder_module.spec_for(encoder, "tiny_random", seed=0), "max_len": 8, "source": "tiny"}
    save(folder, model, vocabulary, run_config, encoder_file,
         metrics={"model": "captioning", "note": "tiny untrained test model"}, examples=examples)
    return folder
