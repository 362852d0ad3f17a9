"""Command-line flags generated from a trainer's config dataclass.

Each field of the dataclass becomes a typed flag (`batch_size` -> `--batch-size`); its default is the shipped
model's value and its type is checked. A dataclass may define `validate()` returning a list of problems in plain
sentences; any problem ends the program with a one-line message and exit status 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import typing

CANCELLED_STATUS = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class ConfigError(ValueError):
    """A setting that cannot be used, with a sentence a person understands."""


def _field_type(field, owner):
    hints = typing.get_type_hints(owner)
    kind = hints[field.name]
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = args[0]
    return kind


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _typed(kind, flag):
    def convert(text):
        try:
            return kind(text)
        except ValueError:
            name = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
            raise argparse.ArgumentTypeError(f"{flag} must be {name}, got {text!r}") from None

    convert.__name__ = kind.__name__
    return convert


def add_config_flags(parser: argparse.ArgumentParser, config_cls) -> None:
    """Adds one flag per dataclass field, with the field's default and type."""
    for field in dataclasses.fields(config_cls):
        if field.metadata.get("cli") is False:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(field, config_cls)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(flag, dest=field.name, type=_parse_bool, nargs="?", const=True, default=default,
                                metavar="BOOL", help=f"{help_text} (default: {default})")
        else:
            parser.add_argument(flag, dest=field.name, type=_typed(kind, flag), default=default,
                                help=f"{help_text} (default: {default})")


def config_from_args(args: argparse.Namespace, config_cls):
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if hasattr(args, f.name)}
    config = config_cls(**values)
    check_config(config)
    return config


def check_config(config) -> None:
    """Raises ConfigError with every problem `config.validate()` reports."""
    problems = config.validate() if hasattr(config, "validate") else []
    if problems:
        raise ConfigError("; ".join(problems))


def fail(message: str, status: int = 2) -> typing.NoReturn:
    """Prints one clear line to stderr and exits non-zero."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def parse(parser: argparse.ArgumentParser, config_cls, argv=None):
    """Parses argv into (namespace, config); a bad value ends the program with one line and exit status 2."""
    args = parser.parse_args(argv)
    try:
        return args, config_from_args(args, config_cls)
    except ConfigError as error:
        fail(str(error))


def run_training(doc: str, config_cls, train, summary, argv=None, errors: tuple = (),
                 cancelled: str = "training cancelled; the last finished epoch is saved in the run folder") -> None:
    """The `main()` of every trainer: flags from `config_cls`, `train(config)`, then `summary(metrics, config)`.

    A setting, data or checkpoint problem (ValueError, RuntimeError, CheckpointError and `errors`) ends the program
    with one line and exit status 1; Ctrl-C with one line (`cancelled`) and status 130.

    Ctrl-C (the Training tab's cancel sends SIGINT to the run's process group) works even when the program was
    started with SIGINT ignored (an app under `nohup ... &` passes that on). Once `fit` has written `cancelled`
    and closed its files, the process ends at once with `os._exit`: the interpreter's TensorFlow teardown takes
    seconds and would outlast the app's grace period before it kills the run.
    """
    from trainers.common.checkpoint import CheckpointError

    restore_interrupt()

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_config_flags(parser, config_cls)
    _, config = parse(parser, config_cls, argv)
    try:
        metrics = train(config)
    except (ValueError, RuntimeError, CheckpointError, *errors) as error:
        fail(str(error), status=1)
    except KeyboardInterrupt:
        message = cancelled
        if argv is None:  # the program itself (python -m trainers.<name>.train), not a caller in this process
            exit_now(message, CANCELLED_STATUS)
        fail(message, status=CANCELLED_STATUS)
    print(summary(metrics, config))


def restore_interrupt() -> None:
    """Makes SIGINT raise KeyboardInterrupt again if this process inherited it ignored (SIG_IGN) or blocked.

    A blocked signal is never delivered: it waits, pending, while the run trains on until the app's grace runs out
    and it is killed. The signal mask survives fork and exec, so a trainer started from a thread (or a parent) that
    blocks SIGINT inherits the block (blocking it before a launch reproduces the CI failure of 2026-12-02: the
    cancel took 5.1 s and a SIGKILL)."""
    try:
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    except ValueError:  # not the main thread (a test calling run_training from a thread): leave it
        pass


def exit_now(message: str, status: int) -> typing.NoReturn:
    """Prints one line to stderr, flushes the output, and ends the process without the interpreter's teardown."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second interrupt must not cut the exit short
    print(f"error: {message}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
