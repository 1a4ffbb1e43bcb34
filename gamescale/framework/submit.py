"""`gamescale submit`: send a run to a Ray cluster through the Ray Jobs API.

The project folder travels as the job's working directory (or the package alone, when
gamescale is installed rather than checked out), the fully resolved config travels in an
environment variable, and the job runs `python -m gamescale run --from-env ...` on the
cluster. Ray 2.60 clusters use token authentication; the client reads the token from
`~/.ray/auth_token` once `RAY_AUTH_MODE=token` is set, which is done here so users never
have to know.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gamescale
from gamescale.framework.config import ExperimentConfig, dump_config
from gamescale.framework.errors import ClusterError

CONFIG_ENV_VAR = "GAMESCALE_CONFIG_YAML"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
EXCLUDES = [".venv", ".git", "runs", "benchmarks/results", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"]


def _enable_token_auth() -> None:
    if "RAY_AUTH_MODE" in os.environ or "RAY_AUTH_TOKEN" in os.environ:
        return
    token_path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if token_path.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def runtime_env(config: ExperimentConfig, ship: bool = True) -> dict[str, Any]:
    """The job's runtime environment: the config, and (with `ship`) this checkout or
    package as its code; without `ship` the job uses the gamescale installed on the cluster
    (an image with gamescale in it, as on KubeRay)."""
    package_dir = Path(gamescale.__file__).resolve().parent
    project_dir = package_dir.parent
    env: dict[str, Any] = {"env_vars": {CONFIG_ENV_VAR: dump_config(config)}}
    if not ship:
        return env
    if (project_dir / "pyproject.toml").is_file():
        env.update(working_dir=str(project_dir), excludes=EXCLUDES)
    else:
        env.update(py_modules=[str(package_dir)])
    return env


def entrypoint(out: str | None) -> str:
    words = ["python", "-m", "gamescale", "run", "--from-env", CONFIG_ENV_VAR, "--address", "auto", "--no-progress"]
    if out:
        words += ["--out", out]
    return " ".join(shlex.quote(w) for w in words)


def client_for(address: str):
    _enable_token_auth()
    import logging

    from ray.job_submission import JobSubmissionClient

    # The SDK logs every packaging step at INFO; users want the job's own output.
    for name in ("ray", "ray.dashboard", "ray._private.runtime_env"):
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # the SDK raises ConnectionError, RuntimeError or ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot reach the Ray Jobs API at {address}: {first}") from None


def _submit_with_retry(client, command: str, env: dict[str, Any], patience_s: float = 90.0) -> str:
    """Submit, waiting while a just-started head has no job agent yet (HTTP 500 "try again later")."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return client.submit_job(entrypoint=command, runtime_env=env)
        except RuntimeError as exc:
            if "try again later" not in str(exc) or time.monotonic() > deadline:
                raise ClusterError(f"the cluster refused the job: {str(exc).strip().splitlines()[0]}") from None
            time.sleep(1.0)


def submit(
    config: ExperimentConfig, address: str, out: str | None, wait: bool = True, echo=print, ship: bool = True
) -> tuple[str, str]:
    """Submit; with `wait`, stream the job's logs until it ends. Returns (job id, status)."""
    client = client_for(address)
    job_id = _submit_with_retry(client, entrypoint(out), runtime_env(config, ship))
    echo(f"submitted {config.name} as job {job_id} to {address}")
    if not wait:
        return job_id, str(client.get_job_status(job_id))
    shown = 0
    while True:
        status = str(client.get_job_status(job_id)).split(".")[-1]
        logs = client.get_job_logs(job_id)
        if len(logs) > shown:
            sys.stdout.write(logs[shown:])
            sys.stdout.flush()
            shown = len(logs)
        if status in TERMINAL:
            echo(f"job {job_id} {status.lower()}")
            return job_id, status
        time.sleep(1.0)
