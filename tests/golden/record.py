"""Records the outputs of the shipped checkpoints for fixed seeds, through each tab's `load(path)`.

    python -m tests.golden.record > tests/golden/outputs.json

Run on the commit before a refactor (this file was first run on 733ce63, in a worktree of it); tests/test_golden.py
compares the current code against the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "checkpoints"
TEXT = [("Ham.\nTo be, or not to be", 0, 0.0, 0, 1.0), ("KING.\nMy lords, ", 1, 0.8, 20, 0.95),
        ("Enter ", 3, 1.0, 0, 0.9)]
SPANISH = ["Y habló Dios á Noé diciendo:", "Me gusta leer libros.", "¿Puedes ayudarme?",
           "El perro duerme bajo la mesa.", "Y el rey David envejeció."]


def text(load) -> list:
    generator = load(CHECKPOINTS / "char_rnn")
    return [generator.generate(prompt, 200, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
            for prompt, seed, temperature, top_k, top_p in TEXT]


def digits(load) -> list:
    generator = load(CHECKPOINTS / "dcgan")
    out = []
    for seed in (0, 7):
        images = np.asarray(generator.generate(seed, 16), np.float32)
        out.append({"seed": seed, "image_means": [round(float(m), 3) for m in images.reshape(16, -1).mean(1)]})
    return out


def translate(load) -> list:
    translator = load(CHECKPOINTS / "nmt")
    out = []
    for sentence in SPANISH:
        try:
            greedy = translator.translate(sentence, method="greedy")["translation"]
            beam = translator.translate(sentence, method="beam", beam=3)["translation"]
        except ValueError as error:  # a sentence with no known word is refused with a sentence
            greedy = beam = f"refused: {error}"
        out.append({"spanish": sentence, "greedy": greedy, "beam3": beam})
    return out


def caption(load) -> list:
    captioner = load(CHECKPOINTS / "captioning")
    pictures = sorted((CHECKPOINTS / "captioning" / "examples").glob("*.jpg"))[:4]
    out = []
    for picture in pictures:
        out.append({"picture": picture.name, "greedy": captioner.caption(str(picture), beam=1)["caption"],
                    "beam3": captioner.caption(str(picture), beam=3)["caption"]})
    return out


def record(loaders: dict) -> dict:
    recorders = {"text": text, "digits": digits, "translate": translate, "caption": caption}
    return {name: recorders[name](load) for name, load in loaders.items()}


def tab_loaders() -> dict:
    from playground import caption_tab, digits_tab, text_tab, translate_tab

    return {"text": text_tab.load, "digits": digits_tab.load, "translate": translate_tab.load,
            "caption": caption_tab.load}


if __name__ == "__main__":
    json.dump(record(tab_loaders()), sys.stdout, indent=1, ensure_ascii=False)
    print()
