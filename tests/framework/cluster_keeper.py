"""Holds a multi-node `ray.cluster_utils.Cluster` in a process of its own for tests: a
head with the Jobs API (2 CPUs) and one worker node (1 CPU) on 127.0.0.1. Prints one JSON
line (GCS address, dashboard URL), then waits; SIGTERM shuts the cluster down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    from ray.cluster_utils import Cluster

    dashboard = free_port()
    head = {
        "num_cpus": 2,
        "node_ip_address": "127.0.0.1",
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": dashboard,
        # The default agent ports are fixed numbers that other local heads may hold.
        "dashboard_agent_listen_port": free_port(),
        "ray_client_server_port": free_port(),
        "runtime_env_agent_port": free_port(),
        "metrics_agent_port": free_port(),
    }
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
    # A node of its own temp dir, as on a machine of its own: nodes sharing one session dir
    # also share the unpacked job `working_dir`, and the worker node's runtime-env agent
    # re-unpacks it under the running job's driver (whose cwd then vanishes).
    worker_dir = tempfile.mkdtemp(prefix="gsw")
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", temp_dir=worker_dir)
    cluster.wait_for_nodes()
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print(json.dumps({"address": cluster.address, "dashboard": f"http://127.0.0.1:{dashboard}"}), flush=True)
    while not stop:
        time.sleep(0.2)
    cluster.shutdown()
    shutil.rmtree(worker_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
