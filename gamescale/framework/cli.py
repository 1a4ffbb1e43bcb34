"""The `gamescale` command line: list, run, resume, report, sweep, submit, serve.

Every user error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gamescale.framework.errors import ConfigError, GamescaleError, print_error
from gamescale.framework.runtime import is_supervised, report_to_supervisor, supervise

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Game-theoretic and learning experiments on Ray.")

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a config field: a.b=value")]


def _fail(message: str) -> None:
    print_error(message)
    report_to_supervisor("exit")  # said: a supervising process adds nothing
    raise typer.Exit(2)


def _supervise_remote_driver(address: str | None) -> None:
    """A driver joining a running cluster runs as a child of this process, which speaks for
    it if Ray ends it without a word (`runtime.supervise`); an embedded run owns its Ray."""
    if address is None or address == "local" or is_supervised() or _command_line is None:
        return
    raise typer.Exit(supervise([sys.executable, "-m", "gamescale", *_command_line]))


@app.command("list")
def list_experiments() -> None:
    """List the built-in experiments, one line each."""
    import yaml

    from gamescale.framework.config import experiment_files

    for name, path in sorted(experiment_files().items()):
        description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        typer.echo(f"{name:28s} {description}")


def _load(source: str | None, from_env: str | None, sets: list[str] | None, workers, address, out):
    from gamescale.framework.api import merge_overrides
    from gamescale.framework.config import load_config, parse_assignment

    overrides = merge_overrides(dict(parse_assignment(s) for s in sets or []), workers, address, out)
    if from_env:
        import yaml

        text = os.environ.get(from_env)
        if text is None:
            raise GamescaleError(f"environment variable {from_env} is not set")
        return load_config(yaml.safe_load(text), overrides)
    if not source:
        raise GamescaleError("name an experiment or a YAML file (see `gamescale list`)")
    return load_config(source, overrides)


@app.command()
def run(
    name: Annotated[str | None, typer.Argument(help="experiment name or YAML file")] = None,
    set_: SetOption = None,
    workers: Annotated[int | None, typer.Option(help="rollout workers")] = None,
    address: Annotated[str | None, typer.Option(help="join this Ray cluster instead of starting one")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    from_env: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run an experiment to the end and write its run directory."""
    from gamescale.framework.loop import start_run
    from gamescale.framework.report import report

    try:
        config = _load(name, from_env, set_, workers, address, out)
        _supervise_remote_driver(config.runtime.address)
        run_dir = start_run(config, progress=progress)
        report(run_dir, redraw=False)
    except GamescaleError as exc:
        _fail(str(exc))
    typer.echo(f"run directory: {run_dir}")


def _run_address(run_dir: Path) -> str | None:
    """The cluster a run directory's config names (None when it cannot be read: resuming
    then reports why)."""
    from gamescale.framework import storage
    from gamescale.framework.config import load_config

    try:
        return load_config(run_dir / storage.CONFIG_FILE).runtime.address
    except (GamescaleError, OSError, ValueError):
        return None


@app.command()
def resume(
    run_dir: Path,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    address: Annotated[
        str | None, typer.Option(help="continue on this Ray cluster ('local': an embedded one); default: the run's own")
    ] = None,
) -> None:
    """Continue a killed run or sweep from its newest checkpoints."""
    from gamescale.framework.loop import resume_run
    from gamescale.framework.report import report as print_report
    from gamescale.framework.report import report_sweep
    from gamescale.framework.sweep import is_sweep_dir, resume_sweep

    try:
        if is_sweep_dir(run_dir):
            if address is not None:
                raise ConfigError("--address moves a run to another cluster; a sweep resumes where it was started")
            resume_sweep(run_dir, progress=progress)
            report_sweep(run_dir)
            typer.echo(f"sweep directory: {run_dir}")
            return
        _supervise_remote_driver(address or _run_address(run_dir))
        resume_run(run_dir, progress=progress, address=address)
        print_report(run_dir, redraw=False)
    except GamescaleError as exc:
        _fail(str(exc))
    typer.echo(f"run directory: {run_dir}")


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="run or sweep directories; several are overlaid")],
    out: Annotated[Path | None, typer.Option(help="where a comparison writes its plots")] = None,
) -> None:
    """Plots and a table: of one run, of one sweep, or of several overlaid."""
    from gamescale.framework.report import compare, report_sweep
    from gamescale.framework.report import report as print_report
    from gamescale.framework.sweep import is_sweep_dir

    try:
        if len(run_dirs) == 1 and is_sweep_dir(run_dirs[0]):
            report_sweep(run_dirs[0])
        elif len(run_dirs) == 1 and out is None:
            print_report(run_dirs[0])
        else:
            import datetime as dt

            out = out or Path("runs") / f"compare-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
            compare(run_dirs, out)
    except GamescaleError as exc:
        _fail(str(exc))


@app.command()
def sweep(
    name: Annotated[str, typer.Argument(help="experiment name or YAML file")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help="KEY=V1,V2,... (repeat for a grid)")] = None,
    seeds: Annotated[int, typer.Option(help="seeds per grid point (run.seed, run.seed + 1, ...)")] = 1,
    set_: SetOption = None,
    workers: Annotated[int | None, typer.Option(help="rollout workers per trial")] = None,
    address: Annotated[str | None, typer.Option(help="join this Ray cluster instead of starting one")] = None,
    out: Annotated[Path | None, typer.Option(help="sweep directory")] = None,
    progress: Annotated[bool, typer.Option(help="show Tune's progress")] = True,
) -> None:
    """Run an experiment over a grid of values and seeds on Ray Tune."""
    from gamescale.framework.report import report_sweep
    from gamescale.framework.sweep import default_sweep_dir, parse_grid, plan_sweep, start_sweep

    try:
        config = _load(name, None, set_, workers, address, None)
        plan = plan_sweep(config, parse_grid(grid or []), seeds)
        sweep_dir = out or default_sweep_dir(config)
        start_sweep(plan, sweep_dir, progress=progress)
        report_sweep(sweep_dir)
    except GamescaleError as exc:
        _fail(str(exc))
    typer.echo(f"sweep directory: {sweep_dir}")


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="experiment name or YAML file")],
    address: Annotated[str, typer.Option(help="Ray Jobs address, e.g. http://HOST:8265")],
    set_: SetOption = None,
    workers: Annotated[int | None, typer.Option(help="rollout workers")] = None,
    out: Annotated[str | None, typer.Option(help="run directory on the cluster")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the job's logs until it ends")] = True,
    ship: Annotated[
        bool, typer.Option("--ship/--no-ship", help="send this checkout as the job's code, or use the cluster's gamescale")
    ] = True,
) -> None:
    """Submit a run to a Ray cluster through the Ray Jobs API."""
    from gamescale.framework.submit import submit as submit_job

    try:
        config = _load(name, None, set_, workers, None, None)
        _, status = submit_job(config, address, out, wait=wait, echo=typer.echo, ship=ship)
    except GamescaleError as exc:
        _fail(str(exc))
    if wait and status != "SUCCEEDED":
        raise typer.Exit(1)


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="a saved causal LM (config.json and weights)")],
    port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1")] = 8000,
    replicas: Annotated[int, typer.Option(help="model replicas (Serve deployment replicas)")] = 1,
    address: Annotated[str | None, typer.Option(help="join this Ray cluster instead of starting one")] = None,
) -> None:
    """Serve a local model as an OpenAI-compatible chat endpoint on Ray Serve (Ctrl-C stops)."""
    import time

    from gamescale.framework.serve import start_server, stop_server

    try:
        url = start_server(model_dir, port=port, replicas=replicas, address=address)
    except GamescaleError as exc:
        _fail(str(exc))
    typer.echo(f"serving {model_dir} at {url} (POST {url}/chat/completions; Ctrl-C stops)")
    try:
        while True:
            time.sleep(1.0)
    finally:
        stop_server()


_command_line: list[str] | None = None  # the arguments of the `gamescale` process, set by `main`


def main() -> None:
    global _command_line
    _command_line = sys.argv[1:]  # only a real command line is re-run as a supervised child
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        report_to_supervisor("exit")
        sys.exit(130)


if __name__ == "__main__":
    main()
