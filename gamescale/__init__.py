"""gamescale: game-theoretic and learning experiments at cluster scale on Ray.

    import gamescale
    run = gamescale.run("mfg-crowd-fp", overrides={"run.iterations": 20})
    run.metrics            # pyarrow.Table, one row per iteration
    env = gamescale.make_env("crowd_modelling_2d", size=20)   # no Ray needed
"""

from gamescale.envs.registry import make_env

__version__ = "0.1.0"


def __getattr__(name: str):
    # The runtime (and Ray) is imported only when a run is asked for, so `make_env`
    # stays light for notebooks and unit tests.
    if name in ("run", "resume", "load_run", "Run", "sweep", "resume_sweep", "load_runs", "Sweep"):
        from gamescale.framework import api

        return getattr(api, name)
    raise AttributeError(name)


__all__ = [
    "make_env",
    "run",
    "resume",
    "load_run",
    "Run",
    "sweep",
    "resume_sweep",
    "load_runs",
    "Sweep",
    "__version__",
]
