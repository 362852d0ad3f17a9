"""Importing Gradio without writing type stubs: about 1 s less before the page answers.

When Gradio defines each of its ~50 component classes, its metaclass calls `create_or_modify_pyi`
(gradio/component_meta.py, Gradio 6.31): it reads the class's source file, parses the whole file with `ast` (the
`.pyi` beside it too), renders the interface with a Jinja template, and rewrites the `.pyi` if it differs. Those
stubs serve type checkers of Gradio's own source tree; an app never reads them. They were 40 % of `import gradio`
here (Intel Xeon, quiet: 2.24-2.32 s, 1.30-1.37 s without them, three runs each), and a component subclass in an
app's own module would get a `.pyi` written next to it.

`skip_gradio_stubs()` installs an import hook that, once `gradio.component_meta` has run and before any
component class is defined, replaces that function with one that does nothing. It must run before Gradio is
imported (`python -m playground` calls it first); if Gradio is already imported, or a later Gradio has no such
function, it changes nothing. EAGER_PLAYGROUND_GRADIO_STUBS=on keeps Gradio's own behaviour.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

MODULE = "gradio.component_meta"
FUNCTION = "create_or_modify_pyi"


def _no_stub(*args, **kwargs) -> None:
    return None


class _SkipStubs(importlib.abc.MetaPathFinder):
    """Finds `gradio.component_meta` as Python would, and swaps the stub writer out right after it has run."""

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # one module, once
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module) -> None:
            run_module(module)
            if callable(getattr(module, FUNCTION, None)):
                setattr(module, FUNCTION, _no_stub)

        spec.loader.exec_module = exec_module
        return spec


def skip_gradio_stubs() -> bool:
    """Installs the hook; False if it cannot work (Gradio already imported) or the user turned it off."""
    if MODULE in sys.modules or os.environ.get("EAGER_PLAYGROUND_GRADIO_STUBS") == "on":
        return False
    if not any(isinstance(finder, _SkipStubs) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SkipStubs())
    return True
