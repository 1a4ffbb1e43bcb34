"""Named environments: each family registers a typed config and a factory.

`make_env("crowd_modelling_2d", size=20)` validates the keyword arguments through the
family's config model (unknown or mistyped fields are errors) and builds the env without
Ray. Families register themselves when their subpackage is imported; every subpackage of
`gamescale.envs` is imported on first lookup. A family whose environments need torch
registers the factory as a `"module:attribute"` string, imported only when one is built,
so that looking up names and validating configs stays light.
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
    config_cls: type[EnvConfig]
    factory: Callable[[Any], Any] | str
    description: str


_ENVS: dict[str, EnvEntry] = {}
_loaded = False


class UnknownNameError(KeyError):
    """An environment or algorithm name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register_env(
    name: str, config_cls: type[EnvConfig], factory: Callable[[Any], Any] | str, description: str = ""
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
    return entry.config_cls.model_validate(data)


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable itself, or the attribute named by a `"module:attribute"` string."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def build_env(config: EnvConfig) -> Any:
    return resolve(env_entry(config.name).factory)(config)


def make_env(name: str, **kwargs: Any) -> Any:
    """Build any registered environment in this process (no Ray)."""
    return build_env(env_config({"name": name, **kwargs}))
