"""`python -m playground` imports Gradio without its type-stub writer (playground/quick_import.py): the hook takes
effect, the components behave as before, nothing is written next to an app's own component subclass, and the
user's switch keeps Gradio's own behaviour. Each case runs in a fresh interpreter (Gradio must not be imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from playground.quick_import import skip_gradio_stubs
print("installed", skip_gradio_stubs())
sys.path.insert(0, sys.argv[1])
import gradio as gr
import gradio.component_meta as meta
print("writer", meta.create_or_modify_pyi.__name__)
import my_component
box = my_component.Loud(value="hola")
print("value", box.postprocess("hola"))
print("again", skip_gradio_stubs())
"""

COMPONENT = '''import gradio as gr


class Loud(gr.Textbox):
    """A component subclass in an app's own module."""

    def postprocess(self, value):
        return super().postprocess(value).upper()
'''


def run(tmp_path: Path, **env) -> dict:
    folder = tmp_path / "app_module"
    folder.mkdir(exist_ok=True)
    (folder / "my_component.py").write_text(COMPONENT)
    result = subprocess.run([sys.executable, "-c", CHECK, str(folder)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_gradio_imports_without_writing_stubs(tmp_path):
    seen = run(tmp_path)
    assert seen == {"installed": "True", "writer": "_no_stub", "value": "HOLA", "again": "False"}
    assert not (tmp_path / "app_module" / "my_component.pyi").exists(), "no stub may be written next to it"


def test_the_switch_keeps_gradios_own_stub_writer(tmp_path):
    seen = run(tmp_path, EAGER_PLAYGROUND_GRADIO_STUBS="on")
    assert seen == {"installed": "False", "writer": "create_or_modify_pyi", "value": "HOLA", "again": "False"}
    assert (tmp_path / "app_module" / "my_component.pyi").exists(), "Gradio itself writes the stub"
