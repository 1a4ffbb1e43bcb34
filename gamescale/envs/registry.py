"""Named environments: each family registers a typed config and a factory.

`make_env("crowd_modelling_2d", size=20)` validates the keyword arguments through the
family's config model (unknown or mistyped fields are errors) and builds the env without
Ray. Families register themselves when their subpackage is imported; every subpackage of
`gamescale.envs` is imported on first lookup, so a family's `__init__` imports only its
light config modules. Factories (and config classes that live beside heavy code) are
registered as `"module:attribute"` strings, imported only when one is built or validated:
every process of a run (driver, rollout workers, learners) looks names up, and eager
imports of every family (pettingzoo, scipy, torch) would cost each of them tens of MiB.
`lazy_exports` gives a family package the names it re-exports without importing them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


class EnvConfig(BaseModel):
    """Base of every environment config: `name` picks the registered environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


@dataclass(frozen=True)
class EnvEntry:
    name: str
    config_cls: type[EnvConfig] | str
    factory: Callable[[Any], Any] | str
    description: str


_ENVS: dict[str, EnvEntry] = {}
_loaded = False


class UnknownNameError(KeyError):
    """An environment or algorithm name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register_env(
    name: str, config_cls: type[EnvConfig] | str, factory: Callable[[Any], Any] | str, description: str = ""
) -> None:
    if name in _ENVS and _ENVS[name].factory is not factory:
        raise ValueError(f"environment {name!r} is registered twice")
    _ENVS[name] = EnvEntry(name, config_cls, factory, description)


def _load_families(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if info.ispkg:
            importlib.import_module(f"{package}.{info.name}")


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        _load_families("gamescale.envs")


def env_names() -> list[str]:
    _ensure_loaded()
    return sorted(_ENVS)


def env_entry(name: str) -> EnvEntry:
    _ensure_loaded()
    if name not in _ENVS:
        raise UnknownNameError(f"unknown environment {name!r}; known: {', '.join(sorted(_ENVS)) or 'none'}")
    return _ENVS[name]


def env_config(data: dict[str, Any]) -> EnvConfig:
    """Validate a raw env mapping (with its `name`) into that environment's config model."""
    entry = env_entry(str(data.get("name")))
    return resolve(entry.config_cls).model_validate(data)


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable itself, or the attribute named by a `"module:attribute"` string."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `exports[name]` (a module path)
    the first time `name` is asked for, so importing the package stays light."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


def build_env(config: EnvConfig) -> Any:
    return resolve(env_entry(config.name).factory)(config)


def make_env(name: str, **kwargs: Any) -> Any:
    """Build any registered environment in this process (no Ray)."""
    return build_env(env_config({"name": name, **kwargs}))
