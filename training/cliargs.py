"""argparse options generated from a dataclass: one place for names, types, defaults, help."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _base(tp: Any) -> tuple[Any, bool]:
    """``(X, optional)`` for ``X`` or ``X | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--field-name`` per field; bools are flags (``--no-x`` when the default is on)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, _ = _base(hints[f.name])
        name = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", "")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if tp is bool:
            if f.default:
                parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name,
                                    action="store_false", help=f"do not: {helptext}")
            else:
                parser.add_argument(name, dest=f.name, action="store_true", help=helptext)
            continue
        conv = Path if tp is Path else tp
        parser.add_argument(name, dest=f.name, type=conv, required=required,
                            default=None if required else f.default,
                            help=helptext + ("" if required else " (default: %(default)s)"))


def dataclass_from_args(cls: type[T], ns: argparse.Namespace) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(ns).items() if k in names})
