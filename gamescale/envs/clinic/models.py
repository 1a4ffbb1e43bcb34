"""Language-model players for the clinic: a local Hugging Face causal LM loaded from a
directory, an OpenAI-compatible chat endpoint, and the policy that lets either play a role.

A chat model is anything with `complete(messages, max_new_tokens, temperature, seed) -> str`
over chat messages (`[{"role": ..., "content": ...}]`). Both adapters render messages the
same way (the tokenizer's chat template when it has one, else `clinic.render_messages`),
and the server in `gamescale.framework.serve` wraps `LocalChatModel` itself, so a model
served and the same model in process give the same greedy replies.

transformers, tokenizers and safetensors are the `clinic` extra; they are imported only
when a local model is built.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from gamescale.envs.clinic.clinic import render_messages

Messages = list[dict[str, str]]
_STOP_MARKERS = ("\nUser:", "\nSystem:", "\nAssistant:")


class ChatModel(Protocol):
    def complete(
        self, messages: Messages, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> str: ...


class EndpointError(RuntimeError):
    """An endpoint call that still failed after its retries."""


def check_model_dir(model_dir: str | Path) -> Path:
    """The directory of a saved causal LM, or ValueError naming what is missing."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ValueError(f"model directory {path} does not exist")
    if not (path / "config.json").is_file():
        raise ValueError(f"model directory {path} has no config.json")
    weights = list(path.glob("*.safetensors")) + list(path.glob("pytorch_model*.bin"))
    if not weights:
        raise ValueError(f"model directory {path} has no weights (*.safetensors or pytorch_model*.bin)")
    return path


def first_reply(text: str) -> str:
    """The generated text up to the point where the model starts writing another speaker's turn."""
    cut = min([text.find(m) for m in _STOP_MARKERS if m in text] or [len(text)])
    return text[:cut].strip()


class LocalChatModel:
    """A causal LM from a local directory (`save_pretrained` layout), on CPU or one GPU.

    Prompts longer than the model's context keep their end (the newest turns). Greedy when
    `temperature` is 0; otherwise sampled with torch's generator seeded by `seed`.
    """

    def __init__(self, model_dir: str | Path, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = check_model_dir(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(self.device).eval()
        config = self.model.config
        self.context = int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 1024))
        self.name = path.name

    def prompt(self, messages: Messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_messages(messages)

    def complete(self, messages: Messages, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> str:
        import torch

        ids = self.tokenizer(self.prompt(messages), return_tensors="pt")["input_ids"]
        ids = ids[:, -max(self.context - max_new_tokens, 1) :].to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad}
        if temperature > 0:
            torch.manual_seed(seed)
            options.update(do_sample=True, temperature=temperature)
        else:
            options.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **options)
        return first_reply(self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


class EndpointChatModel:
    """An OpenAI-compatible `/chat/completions` endpoint over plain HTTP (urllib).

    A call that times out, cannot connect, or gets HTTP 429 / 5xx is retried `retries`
    times with exponential back-off (`backoff_s`, doubled each time); then `EndpointError`.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        api_key: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.api_key = api_key

    def _request(self, path: str, body: Mapping[str, Any] | None, timeout_s: float) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method="GET" if body is None else "POST")
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read().decode())

    def probe(self, timeout_s: float = 5.0) -> None:
        """Raise ValueError naming the endpoint when `GET /models` does not answer."""
        try:
            self._request("/models", None, timeout_s)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ValueError(f"endpoint {self.base_url} is unreachable ({reason})") from None

    def complete(self, messages: Messages, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> str:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                reply = self._request("/chat/completions", body, self.timeout_s)
                return first_reply(str(reply["choices"][0]["message"]["content"]))
            except urllib.error.HTTPError as exc:
                if exc.code != 429 and exc.code < 500:
                    raise EndpointError(f"{self.base_url} answered HTTP {exc.code}") from None
                last = exc
            except (OSError, ValueError, KeyError, IndexError) as exc:
                last = exc
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise EndpointError(f"{self.base_url} failed after {self.retries + 1} attempts: {last}")


class ModelPlayer:
    """A clinic policy played by a chat model: its reply to the agent's chat messages
    (`info["messages"]`, as `agents.play` passes them)."""

    def __init__(self, model: ChatModel, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed

    def act(self, observation: str, info: Mapping[str, Any]) -> str:
        return self.model.complete(list(info["messages"]), self.max_new_tokens, self.temperature, self.seed)


def build_tiny_model(directory: str | Path, seed: int = 0, corpus: list[str] | None = None) -> Path:
    """Save a tiny randomly initialised GPT-2-shaped causal LM with a byte-level BPE tokenizer
    trained here on `corpus` (default: the bundled MedQA cases' text): nothing is downloaded.
    For tests and benchmarks; its replies are noise."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from gamescale.envs.clinic.cases import load_cases

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = [" ".join([c.objective, *c.patient.values(), c.diagnosis]) for c in load_cases("medqa")]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=512, min_frequency=2, special_tokens=["<|endoftext|>"], show_progress=False
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=1024, n_embd=32, n_layer=2, n_head=2, eos_token_id=0, bos_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(directory, safe_serialization=True)
    return directory
