"""Named algorithms: each family registers a typed config and a builder.

`build(config, env) -> Algorithm` (see `gamescale.algorithms.base`). Families register
themselves when their subpackage of `gamescale.algorithms` is imported; every subpackage
is imported on first lookup. Builders that need heavy imports (torch, scipy, pettingzoo),
and config classes that live beside such code, are registered as `"module:attribute"`
strings, resolved only when a run builds or validates that algorithm, so looking up names
never pays for other families' imports (see `gamescale.envs.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from gamescale.envs.registry import UnknownNameError, _load_families, resolve


class AlgorithmConfig(BaseModel):
    """Base of every algorithm config: `name` picks the registered algorithm."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    config_cls: type[AlgorithmConfig] | str
    build: Callable[[Any, Any], Any] | str
    description: str


_ALGORITHMS: dict[str, AlgorithmEntry] = {}
_loaded = False


def register_algorithm(
    name: str, config_cls: type[AlgorithmConfig] | str, build: Callable[[Any, Any], Any] | str, description: str = ""
) -> None:
    if name in _ALGORITHMS and _ALGORITHMS[name].build is not build:
        raise ValueError(f"algorithm {name!r} is registered twice")
    _ALGORITHMS[name] = AlgorithmEntry(name, config_cls, build, description)


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        _load_families("gamescale.algorithms")


def algorithm_names() -> list[str]:
    _ensure_loaded()
    return sorted(_ALGORITHMS)


def algorithm_entry(name: str) -> AlgorithmEntry:
    _ensure_loaded()
    if name not in _ALGORITHMS:
        raise UnknownNameError(f"unknown algorithm {name!r}; known: {', '.join(sorted(_ALGORITHMS)) or 'none'}")
    return _ALGORITHMS[name]


def algorithm_config(data: dict[str, Any]) -> AlgorithmConfig:
    entry = algorithm_entry(str(data.get("name")))
    return resolve(entry.config_cls).model_validate(data)


def build_algorithm(config: AlgorithmConfig, env: Any) -> Any:
    return resolve(algorithm_entry(config.name).build)(config, env)
