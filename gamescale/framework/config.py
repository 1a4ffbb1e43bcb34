"""Experiment configs: YAML files validated into typed models, with `--set a.b=v` overrides.

An experiment file has five sections::

    name: mfg-crowd-fp
    description: one line for `gamescale list`
    env: {name: crowd_modelling, size: 10}         # validated by the env's own config model
    algorithm: {name: fictitious_play}             # validated by the algorithm's config model
    runtime: {workers: 1, shards: 4, gpus: auto, address: null}
    run: {iterations: 100, seed: 0, checkpoint_every: 10, keep_checkpoints: 2, out: null}
    report: {log_y: [exploitability]}

Every mistake becomes one `ConfigError` line naming the file, the field and what was
expected.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SerializeAsAny, ValidationError

from gamescale.algorithms.registry import AlgorithmConfig, algorithm_config
from gamescale.envs.registry import EnvConfig, UnknownNameError, env_config
from gamescale.framework.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeConfig(_Section):
    """Where and how wide a run executes."""

    workers: int = Field(1, ge=1, description="rollout-worker actors")
    shards: int = Field(4, ge=1, description="sampling shards per call; fixes the random streams")
    gpus: Literal["auto"] | int = Field("auto", description="GPUs per learner; auto = 1 if the cluster has one")
    learner_replicas: Literal["auto"] | PositiveInt = Field(
        "auto",
        description="data-parallel replicas of the learners; each must divide every learner's gradient_slices. "
        "auto = the largest such divisor up to the rollout workers (CPU learners) or the cluster's GPUs "
        "(GPU learners); results do not depend on it",
    )
    learner_threads: Literal["auto"] | PositiveInt = Field(
        "auto",
        description="threads each learner process may use for row-parallel numpy work between its gradient "
        "steps (the deep mean-field target tables); auto = the rollout workers per learner replica (they wait "
        "while the learner fits), at most the learner node's usable cores; results do not depend on it",
    )
    address: str | None = Field(None, description="Ray cluster to join; null starts an embedded local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the embedded local Ray (default: all)")
    placement: Literal["spread", "pack"] = Field(
        "spread", description="rollout workers over nodes: spread (as many nodes as possible) or pack"
    )
    driver_threads: int | Literal["auto"] | None = Field(
        "auto",
        description="BLAS and torch threads of the driver while it drives actors: auto (the usable cores left "
        "after the rollout workers, at least 1), a number, or null (the libraries' defaults); each actor gets "
        "one thread per CPU it reserves, from Ray",
    )
    worker_start_timeout_s: float = Field(120.0, gt=0, description="give up placing rollout workers after this")
    worker_revive_timeout_s: float = Field(
        60.0, gt=0, description="drop a lost rollout worker that has not come back after this (the pool shrinks)"
    )
    head_timeout_s: float = Field(
        30.0,
        gt=0,
        description="stop the run (resumable) once the cluster's head has not answered for this long; "
        "keep it below Ray's gcs_rpc_server_reconnect_timeout_s (60 s)",
    )


class RunConfig(_Section):
    """How long a run lasts and where it writes."""

    iterations: int = Field(100, ge=1)
    time_budget_s: float | None = Field(
        None, gt=0, description="end the run after the first iteration that finishes at or past this many seconds of run time"
    )
    seed: int = Field(0, ge=0)
    checkpoint_every: int = Field(10, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    out: str | None = Field(None, description="run directory; default runs/NAME-TIMESTAMP")


class ReportConfig(_Section):
    log_y: list[str] = Field(default_factory=list, description="metrics plotted on a log scale")
    headline: list[str] = Field(default_factory=list, description="metrics shown first on the console")


class ExperimentConfig(_Section):
    name: str
    description: str = ""
    env: SerializeAsAny[EnvConfig]
    algorithm: SerializeAsAny[AlgorithmConfig]
    runtime: RuntimeConfig = RuntimeConfig()
    run: RunConfig = RunConfig()
    report: ReportConfig = ReportConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


EXPERIMENTS_PACKAGE = "gamescale.experiments"


def experiment_files() -> dict[str, Path]:
    """Built-in experiments by name (the YAML files shipped in gamescale/experiments)."""
    folder = resources.files(EXPERIMENTS_PACKAGE)
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def resolve_source(name_or_path: str | Path) -> Path:
    """A built-in experiment name or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    builtin = experiment_files()
    if str(name_or_path) in builtin:
        return builtin[str(name_or_path)]
    raise ConfigError(
        f"unknown experiment {str(name_or_path)!r}: not a built-in (see `gamescale list`) and no such YAML file"
    )


def _format_error(source: str, prefix: str, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join([prefix, *(str(p) for p in first["loc"])] if prefix else [str(p) for p in first["loc"]])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    got = first.get("input")
    shown = "" if first["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f" [+{more} more]" if more else ""
    return f"{source}: {loc}: {message}{shown}{tail}"


def parse_value(text: str) -> Any:
    """Parse the value of a `--set` override the way YAML would."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """`"env.size=20"` -> `("env.size", 20)`: one `--set` override."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. env.size=20")
    key, value = text.split("=", 1)
    return key.strip(), parse_value(value)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | list[str] | None, source: str) -> dict[str, Any]:
    """Set dotted keys (`env.size`) in a raw config mapping; values from strings are YAML-parsed."""
    if not overrides:
        return raw
    items = list(overrides.items()) if isinstance(overrides, dict) else [parse_assignment(t) for t in overrides]
    for key, value in items:
        parts = key.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: override {key}: {'.'.join(parts[: depth + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def _validate_section(validate: Any, data: dict[str, Any], section: str, source: str) -> Any:
    """Validate the env or algorithm section with the model its `name` registered."""
    try:
        return validate(data)
    except UnknownNameError as exc:
        raise ConfigError(f"{source}: {section}.name: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(_format_error(source, section, exc)) from None
    except ValueError as exc:
        raise ConfigError(f"{source}: {section}: {exc}") from None


def validate_config(raw: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate a raw mapping into an `ExperimentConfig`; raises one-line `ConfigError`s."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping of sections (name, env, algorithm, ...), got {type(raw).__name__}"
        )
    raw = dict(raw)
    for section in ("env", "algorithm"):
        if section not in raw:
            raise ConfigError(f"{source}: {section}: required section is missing")
        if not isinstance(raw[section], dict) or "name" not in raw[section]:
            raise ConfigError(f"{source}: {section}.name: required field is missing")
    raw["env"] = _validate_section(env_config, raw["env"], "env", source)
    raw["algorithm"] = _validate_section(algorithm_config, raw["algorithm"], "algorithm", source)
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, "", exc)) from None


def load_raw(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return raw if raw is not None else {}


def load_config(
    name_or_config: str | Path | dict[str, Any] | ExperimentConfig,
    overrides: dict[str, Any] | list[str] | None = None,
) -> ExperimentConfig:
    """A validated config from a built-in name, a YAML path, a mapping or a config object."""
    if isinstance(name_or_config, ExperimentConfig):
        raw, source = name_or_config.to_dict(), f"<{name_or_config.name}>"
    elif isinstance(name_or_config, dict):
        raw, source = dict(name_or_config), "<config>"
    else:
        path = resolve_source(name_or_config)
        raw, source = load_raw(path), str(path)
    if isinstance(raw, dict):
        raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    raw = apply_overrides(raw, overrides, source)
    return validate_config(raw, source)


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
