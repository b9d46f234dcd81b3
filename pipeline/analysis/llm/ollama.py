"""``OllamaLLM``: the official ``ollama`` client against ``/api/chat``.

``format`` is the JSON schema, temperature 0, a timeout and keep_alive; a fast and a deep model;
``<think>`` blocks (from deepseek-r1) are removed before parsing. Token log-probabilities of the answer
feed the shared walk (``walk.enum_choice_probs``) for the enum fields' probabilities.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.analysis.llm.base import TOP_LOGPROBS, LLMBackend, LLMError, LLMUnavailable, LLMUsage, parse_json_object
from pipeline.analysis.llm.walk import TokenLogprob, consistent, enum_choice_probs
from pipeline.settings import LLMSettings

log = logging.getLogger(__name__)


def _tagged(model: str) -> str:
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


class OllamaLLM(LLMBackend):
    name = "ollama"

    def __init__(self, llm: LLMSettings) -> None:
        import ollama

        self._ollama = ollama
        self.settings = llm
        self.client = ollama.Client(host=llm.ollama_host, timeout=llm.ollama_timeout_s)

    def model_for(self, tier: str) -> str:
        return self.settings.deep_model if tier == "deep" else self.settings.fast_model

    def available_models(self) -> set[str]:
        try:
            listed = self.client.list()
        except Exception as err:  # any failure to list means "not usable now"
            raise LLMUnavailable(f"Ollama at {self.settings.ollama_host} did not answer: {err}") from err
        return {_tagged(str(m.model)) for m in listed.models if m.model}

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        return self._chat_json([{"role": "system", "content": system}, {"role": "user", "content": user}],
                               schema, tier)

    def follow_up(
        self, system: str, user: str, answer: str, question: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        return self._chat_json([{"role": "system", "content": system}, {"role": "user", "content": user},
                                {"role": "assistant", "content": answer}, {"role": "user", "content": question}],
                               schema, tier)

    def _chat_json(
        self, messages: list[dict[str, str]], schema: Mapping[str, Any], tier: str
    ) -> tuple[dict[str, Any], LLMUsage]:
        import httpx

        model = self.model_for(tier)
        started = time.perf_counter()
        try:
            response = self.client.chat(
                model=model,
                messages=messages,
                format=dict(schema),
                options={
                    "temperature": self.settings.temperature,
                    "seed": self.settings.seed,
                    "repeat_penalty": 1.0,
                    "num_predict": self.settings.max_tokens,
                    "num_ctx": self.settings.embedded_ctx,
                },
                keep_alive=self.settings.ollama_keep_alive,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
            )
        except self._ollama.ResponseError as err:
            if err.status_code == 404 or "not found" in str(err.error).lower():
                raise LLMUnavailable(f"model {model!r} is not on the Ollama server: {err.error}") from err
            if err.status_code in (502, 503, 504):
                raise LLMUnavailable(f"Ollama server error {err.status_code}: {err.error}") from err
            raise LLMError(f"Ollama error {err.status_code}: {err.error}") from err
        except (httpx.TransportError, ConnectionError, TimeoutError) as err:
            raise LLMUnavailable(f"Ollama at {self.settings.ollama_host} unreachable: {err}") from err
        content = str(response.message.content or "")
        usage = LLMUsage(
            backend=self.name,
            model=model,
            prompt_tokens=int(response.prompt_eval_count or 0),
            completion_tokens=int(response.eval_count or 0),
            seconds=time.perf_counter() - started,
            raw=content,
        )
        value = parse_json_object(content)
        logprobs = getattr(response, "logprobs", None) or []
        tokens = [
            TokenLogprob(
                str(getattr(t, "token", "")),
                [(str(getattr(a, "token", "")), float(getattr(a, "logprob", -99.0)))
                 for a in (getattr(t, "top_logprobs", None) or [])],
            )
            for t in logprobs
        ]
        if tokens and "<think>" not in content:
            usage.choice_probs = consistent(enum_choice_probs(content, tokens, schema), value)
        return value, usage


def ollama_ready(llm: LLMSettings, tiers: Sequence[str] = ("fast",)) -> bool:
    """True when the Ollama server answers quickly and holds every model the given tiers use."""
    probe = LLMSettings(**{**llm.model_dump(), "ollama_timeout_s": min(3.0, llm.ollama_timeout_s)})
    backend = OllamaLLM(probe)
    try:
        available = backend.available_models()
    except LLMUnavailable as err:
        log.info("Ollama not used: %s", err)
        return False
    missing = {_tagged(backend.model_for(t)) for t in tiers} - available
    if missing:
        log.info("Ollama not used: models %s are not pulled", sorted(missing))
        return False
    return True
