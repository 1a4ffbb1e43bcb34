"""Shared fixtures: one real local Ray cluster (num_cpus=2) for every test that needs actors."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's local Ray on 127.0.0.1; yields its GCS address (host:port)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            logging_level="WARNING",
        )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
