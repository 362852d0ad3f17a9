"""Checking what a tab's handler is given, with one clear sentence (a `gr.Error`) for anything that does not fit.

An endpoint can be called by a script with any JSON value (NaN, 1e300, "abc", null, true), not only with what the
page's sliders allow, so the handlers that are API endpoints take their inputs unprocessed (`preprocess=False`)
and check them here:

    length = whole_number(length, "length", 10, 2000)        # 400.0 -> 400; "abc", 2.5, NaN, True -> gr.Error
    top_p = real_number(top_p, "top-p", 0.05, 1)
    prompt = text(prompt, "prompt", 2000)
    seed = whole_number(seed, "seed", 0, 2**32 - 1, default=None)   # an empty seed box means "no seed"

Messages never quote more than a few dozen characters of the value, and `without_paths` takes server paths
(a temporary folder, the checkpoints folder) out of a sentence that is shown to a user.
"""

from __future__ import annotations

import math
import re

import gradio as gr

QUOTE_CHARS = 40
_MISSING = object()
_PATH = re.compile(r"(?<![\w.])(?:/[^\s/'\"`:;,]+)+/?")


def _shown(value) -> str:
    """The value as a short quotation for a message."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "infinity" if value > 0 else "minus infinity"
        return f"{value:g}" if abs(value) >= 1e15 else repr(value)
    quoted = repr(value)
    return quoted if len(quoted) <= QUOTE_CHARS else quoted[:QUOTE_CHARS - 1] + "…"


def _label(name: str) -> str:
    return name[:1].upper() + name[1:]


def _count(number) -> str:
    return f"{number:,}" if isinstance(number, int) else f"{number:g}"


def _number(value, name: str, kind: str, default):
    """A finite float from a number or numeric text; gr.Error for anything else (None/"" give `default`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not _MISSING:
            return default
        raise gr.Error(f"Give a value for the {name}.")
    number = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and len(value) <= 100:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise gr.Error(f"{_label(name)} must be {kind}, got {_shown(value)}.")
    if isinstance(number, float) and not math.isfinite(number):
        raise gr.Error(f"{_label(name)} must be {kind}, got {_shown(float(number))}.")
    return number


def _in_range(number, name: str, low, high):
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            bounds = f"between {_count(low)} and {_count(high)}"
        elif low is not None:
            bounds = f"at least {_count(low)}"
        else:
            bounds = f"at most {_count(high)}"
        raise gr.Error(f"{_label(name)} must be {bounds}, got {_shown(number)}.")
    return number


def whole_number(value, name: str, low: int | None = None, high: int | None = None, default=_MISSING) -> int:
    """`value` as an int in [low, high]; 3.0 and "3" are fine, 2.5, NaN, inf, "abc", True and None are not."""
    number = _number(value, name, "a whole number", default)
    if number is default and default is not _MISSING:
        return default
    if isinstance(number, float):
        if number != math.floor(number):
            raise gr.Error(f"{_label(name)} must be a whole number, got {_shown(number)}.")
        _in_range(number, name, low, high)  # before int(): 1e300 is refused as a float, cheaply
        number = int(number)
    return _in_range(number, name, low, high)


def real_number(value, name: str, low: float | None = None, high: float | None = None, default=_MISSING) -> float:
    """`value` as a finite float in [low, high]; NaN, inf, "abc", True and None are refused."""
    number = _number(value, name, "a number", default)
    if number is default and default is not _MISSING:
        return default
    return float(_in_range(number, name, low, high))


def text(value, name: str, max_chars: int, required: bool = False, empty_message: str | None = None) -> str:
    """`value` as text of at most `max_chars` characters; None is refused as missing, not as too long."""
    if value is None:
        raise gr.Error(empty_message or f"Give the {name} (text).")
    if not isinstance(value, str):
        raise gr.Error(f"{_label(name)} must be text, got {_shown(value)}.")
    if len(value) > max_chars:
        raise gr.Error(f"{_label(name)} must be at most {max_chars:,} characters, got {len(value):,}.")
    if required and not value.strip():
        raise gr.Error(empty_message or f"Give the {name}.")
    return value


def choice(value, name: str, choices: dict):
    """The value `choices` maps `value` (a label, or one of the values themselves) to; gr.Error otherwise."""
    if isinstance(value, str) and value in choices:
        return choices[value]
    if isinstance(value, str) and value in choices.values():
        return value
    raise gr.Error(f"Unknown {name} {_shown(value)}; choose {', '.join(choices)}.")


def without_paths(message: str) -> str:
    """The message with absolute file paths shortened to their last part (no server folders are shown)."""
    return _PATH.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", str(message))
