"""trainers.common: downloader, atomic checkpoint folders, progress log, flags from dataclasses."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from trainers.common import checkpoint, cli, config, download, progress

PAYLOAD = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /data.txt, honouring Range requests; records each request's headers."""

    requests: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        RangeHandler.requests.append(dict(self.headers))
        if self.path != "/data.txt":
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_good_file_is_cached(server, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    path = download.fetch(f"{server}/data.txt", digest, folder=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert len(RangeHandler.requests) == 1
    again = download.fetch(f"{server}/data.txt", digest, folder=tmp_path)
    assert again == path and len(RangeHandler.requests) == 1, "a cached, verified file is not fetched again"


def test_download_bad_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(download.DownloadError, match="checksum"):
        download.fetch(f"{server}/data.txt", "0" * 64, folder=tmp_path)
    assert list(tmp_path.iterdir()) == [], "neither a partial nor a bad file may look complete"


def test_download_resumes_a_partial_file(server, tmp_path):
    (tmp_path / "data.txt.part").write_bytes(PAYLOAD[:1000])
    path = download.fetch(f"{server}/data.txt", hashlib.sha256(PAYLOAD).hexdigest(), folder=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert RangeHandler.requests[0].get("Range") == "bytes=1000-"


def test_server_down_falls_back_quickly(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = download.fetch_or_none(f"http://127.0.0.1:{port}/data.txt", None, "test data", "the bundled copy",
                                    folder=tmp_path)
    assert result is None
    assert time.monotonic() - started < 20, "an unreachable server must not hang the trainer"
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "offline source: the bundled copy" in message


def test_write_folder_is_atomic_when_writing_fails(tmp_path):
    target = tmp_path / "ckpt"
    checkpoint.write_folder(target, lambda folder: (folder / "a.txt").write_text("old"))

    def broken(folder: Path):
        (folder / "a.txt").write_text("new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        checkpoint.write_folder(target, broken)
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"], "no temporary folder is left behind"
    checkpoint.write_folder(target, lambda folder: (folder / "a.txt").write_text("new"))
    assert (target / "a.txt").read_text() == "new"


def test_missing_and_corrupt_checkpoints_name_the_path(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=str(tmp_path / "nowhere")):
        checkpoint.require_folder(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{")
    with pytest.raises(checkpoint.CheckpointError, match="model.weights.h5 missing"):
        checkpoint.require_folder(tmp_path / "half")
    with pytest.raises(checkpoint.CheckpointError, match="cannot be read"):
        checkpoint.read_json(tmp_path / "half" / "config.json")


def test_progress_log_round_trip(tmp_path):
    log = progress.Progress(tmp_path, epochs=2, steps_per_epoch=3, log_every=1, tensorboard=False,
                            stream=open(tmp_path / "terminal.txt", "w"))
    log.event("start", total_steps=6)
    for step in range(1, 4):
        log.step(1, step, loss=3.0 - step)
    log.epoch_end(1, 3, heldout=1.5)
    log.close("done")
    with open(tmp_path / progress.PROGRESS_FILE, "a") as handle:
        handle.write('{"event": "step", "trunc')  # a line being written right now
    events = progress.read_events(tmp_path)
    assert [e["event"] for e in events] == ["start", "step", "step", "step", "epoch", "done"]
    assert [e["loss"] for e in events[1:4]] == [2.0, 1.0, 0.0]
    assert all(e["eta"] >= 0 and e["total_steps"] == 6 for e in events[1:4])
    assert events[4]["heldout"] == 1.5 and "epoch 1 done" in (tmp_path / "terminal.txt").read_text()


@dataclasses.dataclass
class ToyConfig:
    epochs: int = 3
    learning_rate: float = 0.1
    name: str = "x"
    eager: bool = False

    def validate(self):
        return config.positive("epochs", self.epochs)


def test_flags_from_dataclass():
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_config_flags(parser, ToyConfig)
    _, config = cli.parse(parser, ToyConfig, ["--epochs", "5", "--learning-rate", "0.5", "--eager"])
    assert config == ToyConfig(epochs=5, learning_rate=0.5, name="x", eager=True)
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(parser, ToyConfig, ["--epochs", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(parser, ToyConfig, ["--learning-rate", "fast"])
    assert exit_info.value.code == 2


def test_json_written_atomically(tmp_path):
    checkpoint.write_json(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
