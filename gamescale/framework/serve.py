"""Serving a local causal LM as an OpenAI-compatible chat endpoint on Ray Serve.

`gamescale serve MODEL_DIR` deploys `replicas` copies of the model (each a Serve replica,
with one GPU where the cluster has GPUs) behind Serve's HTTP proxy on 127.0.0.1, under
`/v1`: `GET /v1/models` and `POST /v1/chat/completions` (`messages`, `max_tokens`,
`temperature`, `seed`). Each replica wraps `gamescale.envs.clinic.models.LocalChatModel`,
the same class an in-process player uses, so a served model's greedy replies are the
in-process ones. The clinic reaches it with a player `{kind: endpoint, base_url: URL}`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from gamescale.framework.errors import ConfigError

APP_NAME = "gamescale-chat"
ROUTE = "/v1"


def _deployment(num_replicas: int, num_cpus: float, num_gpus: float):
    """The Serve deployment class (built lazily: importing this module needs no Ray)."""
    from ray import serve

    @serve.deployment(
        name="chat",
        num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_ongoing_requests=8,
    )
    class ChatDeployment:
        def __init__(self, model_dir: str):
            from gamescale.envs.clinic.models import LocalChatModel

            self.model = LocalChatModel(model_dir)
            self.name = Path(model_dir).name

        async def __call__(self, request) -> Any:
            from starlette.responses import JSONResponse

            path = request.url.path.rstrip("/")
            if request.method == "GET" and path.endswith("/models"):
                return {"object": "list", "data": [{"id": self.name, "object": "model", "owned_by": "gamescale"}]}
            if request.method != "POST" or not path.endswith("/chat/completions"):
                return JSONResponse({"error": {"message": f"no route {request.method} {path}"}}, status_code=404)
            try:
                body = await request.json()
                messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]]
                max_tokens = int(body.get("max_tokens") or 64)
                temperature = float(body.get("temperature") or 0.0)
                seed = int(body.get("seed") or 0)
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": {"message": f"bad request: {exc}"}}, status_code=400)
            text = self.model.complete(messages, max_tokens, temperature, seed)
            return {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }

    return ChatDeployment


def start_server(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 1,
    num_cpus: float = 1.0,
    gpus: str | float = "auto",
    address: str | None = None,
) -> str:
    """Deploy the model on Ray Serve (joining `address`, or this process's Ray, or an
    embedded one) and return the endpoint's base URL, e.g. http://127.0.0.1:8000/v1."""
    from gamescale.envs.clinic.models import check_model_dir

    try:
        check_model_dir(model_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if replicas < 1:
        raise ConfigError(f"replicas must be at least 1, got {replicas}")
    from gamescale.framework.runtime import connect

    connect(address)
    import ray
    from ray import serve

    num_gpus = (1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0) if gpus == "auto" else float(gpus)
    serve.start(http_options={"host": host, "port": int(port)})
    app = _deployment(replicas, num_cpus, num_gpus).bind(str(Path(model_dir).resolve()))
    serve.run(app, name=APP_NAME, route_prefix=ROUTE, blocking=False)
    return f"http://{host}:{int(port)}{ROUTE}"


def stop_server() -> None:
    """Remove the chat app and shut Serve down (Ray itself keeps running)."""
    from ray import serve

    serve.shutdown()
