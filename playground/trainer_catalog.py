"""Which models can be trained from the page, what can be set, and how a request becomes the trainer's command line.

Trainable models are found by convention, not listed here: every `trainers/<name>/` with a `train.py` (the command
a run executes) and a TensorFlow-free `config.py` (the contract) that defines `TrainConfig`, `SOURCES`,
`MAIN_SETTINGS` and `RUN_CHECKPOINT` (docs/adding-a-model.md). Discovery never imports TensorFlow: the app process
only reads the contract.

Only numbers and switches may be set freely; a text setting (often a path) only if the trainer lists it among its
main settings or it is one of a few fixed words (`CHOICE_SETTINGS`: the precision). The run folder, resuming, the
uploaded file and the tab's own controls (source, epochs) are never settable (`RESERVED`). Values arrive as JSON or
form values and are coerced to the field's type here, with a sentence for anything that does not fit; the trainer's
own `TrainConfig.validate()` then checks the ranges.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
import typing
from pathlib import Path

from playground.job_error import JobError

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = ROOT / "trainers"
MODEL_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
CONTRACT = ("TrainConfig", "SOURCES", "MAIN_SETTINGS", "RUN_CHECKPOINT")
# Settings a page or script never sets directly: the jobs code owns the run folder and resuming, the user's file
# arrives as an upload, and the tab's own controls carry source and epochs.
RESERVED = ("out", "resume", "text_file", "source", "epochs", "eager")
# Text settings every trainer may have set although they are not main settings: each is one of a few fixed words
# that TrainConfig.validate() checks (a preset runs in float32 so that its measured step times hold on any CPU).
CHOICE_SETTINGS = ("precision",)
# A request's settings are a few dozen numbers at most: anything far bigger is refused before it is looked at.
MAX_SETTINGS = 100
MAX_SETTINGS_CHARACTERS = 10_000  # as JSON
SHOWN_PROBLEMS = 6  # problems listed in one message
SHOWN_UNKNOWN = 5  # unknown setting names quoted in a message; the rest are counted


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: typing.Any
    help: str

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclasses.dataclass(frozen=True)
class Trainer:
    """What the Training tab needs to know about one model's trainer."""

    name: str
    module: typing.Any  # the contract module: trainers.<name>.config, or trainers.<name>.train
    sources: tuple[str, ...]
    main_settings: tuple[str, ...]
    run_checkpoint: str
    settings: dict  # every settable TrainConfig field: name -> Setting

    @property
    def accepts_text_file(self) -> bool:
        return "file" in self.sources and "text_file" in {f.name for f in dataclasses.fields(self.module.TrainConfig)}

    def defaults(self) -> dict:
        return {name: setting.default for name, setting in self.settings.items()}

    def default_epochs(self) -> int:
        """The trainer's own default epochs, or 1 if its TrainConfig has fields without defaults."""
        try:
            return self.module.TrainConfig().epochs
        except TypeError:
            return 1

    def command(self, python: str, out: Path, arguments: dict) -> list[str]:
        """The trainer's command line (an argument list, never a shell): `python -m trainers.<name>.train ...`."""
        command = [python, "-m", f"trainers.{self.name}.train", "--out", str(out)]
        for name, value in arguments.items():
            flag = "--" + name.replace("_", "-")
            command += [flag, ("true" if value else "false") if isinstance(value, bool) else str(value)]
        return command


def contract_module_name(name: str) -> str:
    """The module that holds a trainer's contract: `trainers.<name>.config` (it imports no TensorFlow)."""
    return f"trainers.{name}.config"


def _field_kind(config_cls, field) -> type:
    kind = typing.get_type_hints(config_cls)[field.name]
    if typing.get_origin(kind) is typing.Union or str(typing.get_origin(kind)) == "types.UnionType":
        kind = [a for a in typing.get_args(kind) if a is not type(None)][0]
    return kind


def load_trainer(name: str) -> Trainer | None:
    """The trainer of `name` if it follows the contract; None otherwise (or while it cannot import)."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name) or name == "common" \
            or not all((TRAINERS / name / file).is_file() for file in ("train.py", "config.py")):
        return None
    try:
        module = importlib.import_module(contract_module_name(name))
    except Exception:  # a trainer that is being written may not import yet; it simply is not offered
        return None
    if not all(hasattr(module, name) for name in CONTRACT) or not dataclasses.is_dataclass(module.TrainConfig):
        return None
    settings = {}
    for field in dataclasses.fields(module.TrainConfig):
        if field.name in RESERVED:
            continue
        kind = _field_kind(module.TrainConfig, field)
        if kind in (int, float, bool) or (kind is str and (field.name in module.MAIN_SETTINGS
                                                          or field.name in CHOICE_SETTINGS)):
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            settings[field.name] = Setting(field.name, kind, default, field.metadata.get("help", ""))
    main = tuple(setting for setting in module.MAIN_SETTINGS if setting in settings)
    return Trainer(name, module, tuple(module.SOURCES), main, module.RUN_CHECKPOINT, settings)


def discover_trainers() -> dict[str, Trainer]:
    """Every trainer under trainers/ that follows the Training tab contract, by model name."""
    found = {}
    for folder in sorted(TRAINERS.iterdir()):
        if folder.is_dir():
            trainer = load_trainer(folder.name)
            if trainer is not None:
                found[trainer.name] = trainer
    return found


def _quoted(value) -> str:
    """A value as a short quotation for a message."""
    quoted = repr(value)
    return quoted if len(quoted) <= 40 else quoted[:39] + "…"


def convert(setting: Setting, value) -> typing.Any:
    """The value as the setting's type, or JobError with a sentence."""
    name = setting.name.replace("_", " ")
    if setting.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        raise JobError(f"{name} must be true or false, got {_quoted(value)}")
    if setting.kind in (int, float):
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            kind = "a whole number" if setting.kind is int else "a number"
            raise JobError(f"{name} must be {kind}, got {_quoted(value)}")
        if setting.kind is int:
            if float(number) != int(number):
                raise JobError(f"{name} must be a whole number, got {_quoted(value)}")
            return int(number)
        return float(number)
    if setting.kind is str:
        if not isinstance(value, str):
            raise JobError(f"{name} must be text, got {_quoted(value)}")
        if len(value) > 1000:
            raise JobError(f"{name} must be at most 1,000 characters")
        return value
    raise JobError(f"{name} cannot be set from the page")


def check_request(model, source, epochs, settings) -> tuple[Trainer, dict]:
    """(trainer, {source, epochs, settings...} as their types) for a request, or JobError listing every problem.

    The trainer's own `TrainConfig.validate()` is not run here (it needs the run folder and the upload).
    """
    trainers = discover_trainers()
    if model not in trainers:
        offered = ", ".join(trainers) or "none"
        raise JobError(f"there is no trainable model {str(model)[:60]!r}; the models are: {offered}")
    trainer = trainers[model]
    if source not in trainer.sources:
        raise JobError(f"{model} can train on {', '.join(trainer.sources)}, not {str(source)[:60]!r}")
    epochs = convert(Setting("epochs", int, 1, ""), epochs)
    check_size(settings)
    values, problems, unknown = {}, [], []
    for name, value in settings.items():
        if name not in trainer.settings:
            unknown.append(name)
            continue
        try:
            values[name] = convert(trainer.settings[name], value)
        except JobError as error:
            problems.append(str(error))
    if unknown:
        problems.insert(0, unknown_settings(model, unknown))
    if len(problems) > SHOWN_PROBLEMS:
        problems = problems[:SHOWN_PROBLEMS] + [f"and {len(problems) - SHOWN_PROBLEMS} more problems"]
    if problems:
        raise JobError("; ".join(problems))
    return trainer, {"source": source, "epochs": epochs, **values}


def check_size(settings) -> None:
    """JobError for settings that are not a JSON object, or far too big to be a model's settings."""
    if not isinstance(settings, dict):
        raise JobError("settings must be a JSON object of name: value pairs")
    if len(settings) > MAX_SETTINGS:
        raise JobError(f"settings has {len(settings):,} entries; a model has at most {MAX_SETTINGS} settings")
    try:
        size = len(json.dumps(settings, default=str))
    except (TypeError, ValueError, RecursionError):
        raise JobError("settings must be a JSON object of name: value pairs") from None
    if size > MAX_SETTINGS_CHARACTERS:
        raise JobError(f"settings are {size:,} characters of JSON; at most {MAX_SETTINGS_CHARACTERS:,} are accepted")


def unknown_settings(model: str, names: list) -> str:
    """One sentence naming the first few unknown settings and counting the rest."""
    shown = []
    for name in names[:SHOWN_UNKNOWN]:
        hint = " (it is set by the page itself)" if name in RESERVED else ""
        shown.append(f"{str(name)[:60]!r}{hint}")
    more = f" and {len(names) - SHOWN_UNKNOWN:,} more" if len(names) > SHOWN_UNKNOWN else ""
    noun = "setting" if len(names) == 1 else "settings"
    return f"{model} has no {noun} {', '.join(shown)}{more}"


def validate(trainer: Trainer, fields: dict) -> None:
    """Runs the trainer's own `TrainConfig(**fields).validate()`; JobError with its sentences if it objects."""
    problems = trainer.module.TrainConfig(**fields).validate()
    if problems:
        raise JobError("; ".join(problems))
