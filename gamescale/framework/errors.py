"""User-facing errors: the CLI prints their message as one line and exits with code 2."""

import sys


def print_error(message: str) -> None:
    """The one-line form every user-facing error takes on stderr: `gamescale: error: ...`."""
    sys.stderr.write(f"gamescale: error: {message}\n")
    sys.stderr.flush()


class GamescaleError(Exception):
    """A problem the user can act on (bad config, missing file, unreachable cluster...)."""


class ConfigError(GamescaleError):
    """An experiment config that does not validate."""


class CheckpointError(GamescaleError):
    """A checkpoint that is missing, corrupt or truncated."""


class ClusterError(GamescaleError):
    """A Ray cluster that cannot be reached or used."""


class TrainingError(GamescaleError):
    """Training that cannot go on (a non-finite loss); the last good checkpoint is kept."""


class LearnerLostError(GamescaleError):
    """A learner actor died (its process or its node); the loop rebuilds it from a checkpoint."""


class ClusterLostError(GamescaleError):
    """The Ray cluster itself (its head) went away under a running run."""
