"""SavedModel export (issue 15, part 3): a fresh process loads each export and reproduces the app's outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

LOADER = r'''
import json, sys
import numpy as np
import tensorflow as tf
kind, folder, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loaded = tf.saved_model.load(folder)
if kind == "char_rnn":
    answers = []
    for prompt, length, temperature, seed in request:
        out = loaded.signatures["generate"](prompt=tf.constant(prompt), length=tf.constant(length, tf.int32),
                                            temperature=tf.constant(temperature, tf.float32),
                                            seed=tf.constant(seed, tf.int64))
        answers.append(out["text"].numpy().decode("utf-8"))
    print(json.dumps(answers))
elif kind == "nmt":
    print(json.dumps([loaded.signatures["translate_ids"](source_ids=tf.constant(ids, tf.int32))["ids"].numpy().tolist()
                      for ids in request]))
elif kind == "captioning":
    answers = []
    for path in request:
        out = loaded.signatures["caption"](image=tf.constant(open(path, "rb").read()))
        answers.append([out["caption"].numpy().decode(), out["attention"].numpy().shape[0]])
    print(json.dumps(answers))
elif kind == "dcgan":
    out = loaded.signatures["images"](latent=tf.constant(np.asarray(request, np.float32)))
    print(json.dumps(out["images"].numpy().tolist()))
'''


def load_in_a_fresh_process(kind: str, folder, request) -> list:
    result = subprocess.run([sys.executable, "-c", LOADER, kind, str(folder), json.dumps(request)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def signatures_listed(folder) -> str:
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli is not on PATH")
    result = subprocess.run([cli, "show", "--dir", str(folder), "--all"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_char_rnn_export_writes_the_apps_greedy_text_in_a_fresh_process(tmp_path):
    from tests.tiny import char_rnn as tiny
    from trainers.char_rnn import export
    from trainers.char_rnn.generate import TextGenerator

    from trainers.common import export as common

    checkpoint = tiny.make(tmp_path / "char_rnn")
    out = common.main("char_rnn", export.build, export.SIGNATURE,
                      ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "exported" / "char_rnn" / "1")])
    requests = [["ROMEO:", 90, 0.0, 1], ["", 70, 0.0, 3], ["to be", 0, 0.0, 1], ["zz\u00e9\u2603", 65, 0.9, 11]]
    answers = load_in_a_fresh_process("char_rnn", out, requests)
    # The Text tab's generator in float32, whole numbers, as the export is (the tab's "auto" multiplies in bfloat16
    # on CPUs that compute it natively: tests/test_precision.py): greedy and sampled text are the same.
    app = TextGenerator.load(checkpoint, "float32")
    assert app.matmul_dtype == "whole"
    for (prompt, length, temperature, seed), answer in zip(requests, answers):
        assert len(answer) == length
        assert answer == app.generate(prompt, length, temperature=temperature, seed=seed)
    listing = signatures_listed(out)
    assert "signature_def['generate']" in listing and "signature_def['serving_default']" in listing
    for name in ("prompt", "length", "temperature", "seed", "text"):
        assert f"['{name}']" in listing


def test_dcgan_export_gives_the_tabs_digits_in_a_fresh_process(tmp_path):
    from tests.tiny import dcgan as tiny
    from trainers.common import export as common
    from trainers.dcgan import export
    from trainers.dcgan.generate import DigitGenerator
    from trainers.dcgan.model import latent_vectors

    checkpoint = tiny.make(tmp_path / "dcgan")
    out = common.main("dcgan", export.build, export.SIGNATURE,
                      ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "exported" / "dcgan" / "1")])
    generator = DigitGenerator.load(checkpoint, precision="float32")  # the export computes in float32
    latent = latent_vectors(5, 6, generator.config.latent_dim)
    images = np.asarray(load_in_a_fresh_process("dcgan", out, latent.tolist()), np.uint8)
    expected = generator.generate(5, 6)
    assert images.shape == expected.shape == (6, 28, 28)
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1  # float rounding at a .5 boundary at most
    listing = signatures_listed(out)
    assert "signature_def['images']" in listing and "['latent']" in listing


def test_export_refuses_an_unversioned_or_existing_folder_and_a_bad_checkpoint(tmp_path, capsys):
    from trainers.common import export as common
    from trainers.dcgan import export

    for argv, expected in ((["--out", str(tmp_path / "dcgan")], "must end in a version number"),
                           (["--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "d" / "1")],
                            "cannot export")):
        with pytest.raises(SystemExit) as stopped:
            common.main("dcgan", export.build, export.SIGNATURE, argv)
        assert stopped.value.code == 2
        assert expected in capsys.readouterr().err
    (tmp_path / "e" / "1").mkdir(parents=True)
    with pytest.raises(SystemExit):
        common.main("dcgan", export.build, export.SIGNATURE, ["--out", str(tmp_path / "e" / "1")])
    assert "exists already" in capsys.readouterr().err
    assert not (tmp_path / "d" / "1").exists()  # a failed export leaves nothing behind


def test_nmt_export_gives_the_apps_greedy_ids_in_a_fresh_process(tmp_path):
    from tests.tiny import nmt as tiny
    from trainers.common import export as common
    from trainers.nmt import export
    from trainers.nmt.translate import Translator

    checkpoint = tiny.make(tmp_path / "nmt")
    out = common.main("nmt", export.build, export.SIGNATURE,
                      ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "exported" / "nmt" / "1")])
    translator = Translator.load(checkpoint)
    sentences = ["el perro come", "¿Dónde está la casa?", "Ana y Pedro \u2603", "hola"]
    rows = [translator.source_ids(sentence) for sentence in sentences]
    expected = [translator.decode([ids])[0].ids for ids in rows]
    assert load_in_a_fresh_process("nmt", out, rows) == expected
    assert (out / "assets" / "subword.model").is_file()  # the client's tokenizer travels with the export
    assert "signature_def['translate_ids']" in signatures_listed(out)


def test_caption_export_captions_image_bytes_as_the_app_in_a_fresh_process(tmp_path):
    from PIL import Image

    from tests.tiny import captioning as tiny
    from trainers.captioning import export
    from trainers.captioning.caption import Captioner
    from trainers.common import export as common

    checkpoint = tiny.make(tmp_path / "captioning")
    out = common.main("captioning", export.build, export.SIGNATURE,
                      ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "exported" / "captioning" / "1")])
    captioner = Captioner.load(checkpoint)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):  # 224 x 224 PNGs: no resize, so the graph's pixels are the app's exactly
        path = tmp_path / f"picture{index}.png"
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    answers = load_in_a_fresh_process("captioning", out, paths)
    for path, (caption, rows) in zip(paths, answers):
        expected = captioner.caption(path, beam=1)
        assert caption == expected["caption"] and rows == len(expected["words"])
    assert "signature_def['caption']" in signatures_listed(out)
