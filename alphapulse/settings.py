"""The building blocks of configuration, below every layer that has settings.

:class:`ConfigError` (a bad value, named by its dotted key), :func:`coerce` and
:func:`build` (a mapping checked against a frozen dataclass's annotations) and
the tables that several layers share (:class:`FactoryConfig`,
:class:`TokenConfig`). The pipeline's configuration (``alphapulse.apps.config``),
the bridge's and the EVM adapter's are built from these; none of them imports
another.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

MAX_CONFIG_NUMBER = 1e12    # no setting means anything beyond this (seconds, USD, Hz)


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the dotted path of the culprit."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key
        self.problem = problem


def hex_address(key: str, value: str) -> str:
    s = value.lower()
    if not (s.startswith("0x") and len(s) == 42 and all(c in "0123456789abcdef" for c in s[2:])):
        raise ConfigError(key, f"not a 0x-prefixed 20-byte hex address: {value!r}")
    return s


@dataclass(frozen=True)
class FactoryConfig:
    """A DEX factory: every pool it created belongs to ``venue`` (PROTOCOL.md table 5).

    ``kind``: "v2" (Uniswap V2 family), "v3" (Uniswap V3 family) or "algebra" (Algebra v1.0,
    QuickSwap V3: pools found with ``poolByPair``, fee from ``globalState``)."""
    address: str
    venue: int
    kind: Literal["v2", "v3", "algebra"]
    name: str = ""
    fee_pips: int = 3000          # constant-product fee of this fork (v2); v3 pools carry their own

    def validate(self, key: str) -> None:
        hex_address(f"{key}.address", self.address)
        if not 0 < self.venue < 65536:
            raise ConfigError(f"{key}.venue", f"must be a u16 venue id, got {self.venue}")
        if not 0 <= self.fee_pips < 1_000_000:
            raise ConfigError(f"{key}.fee_pips", f"must be in 0..999999 pips, got {self.fee_pips}")


@dataclass(frozen=True)
class TokenConfig:
    address: str
    symbol: str
    decimals: int

    def validate(self, key: str) -> None:
        hex_address(f"{key}.address", self.address)
        if not 0 <= self.decimals <= 77:
            raise ConfigError(f"{key}.decimals", f"must be in 0..77, got {self.decimals}")


def coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` checked and converted to the annotated type ``tp``; ConfigError names ``key``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a table, got {type(value).__name__}")
        return build(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is tuple:
        (elem, _ellipsis) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {type(value).__name__}")
        return tuple(coerce(f"{key}[{i}]", elem, v) for i, v in enumerate(value))
    if tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a table, got {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        f = float(value)
        if not math.isfinite(f) or abs(f) > MAX_CONFIG_NUMBER:
            raise ConfigError(key, f"must be a finite number within +-{MAX_CONFIG_NUMBER:g}, got {value!r}")
        return f
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    raise ConfigError(key, f"unsupported type {tp!r}")  # a bug in this module, named anyway


def build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else k
            raise ConfigError(where, f"unknown key (known: {', '.join(sorted(names))})")
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kw[f.name] = coerce(where, hints[f.name], data[f.name])
    try:
        return cls(**kw)
    except TypeError as e:  # a required field is missing
        raise ConfigError(prefix or "config", str(e)) from None
