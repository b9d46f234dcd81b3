"""``EmbeddedLLM``: llama.cpp in-process through xllamacpp with a packaged GGUF.

The model is loaded once; output is constrained by the JSON schema (llguidance grammar), temperature 0,
repeat penalty 1.0 (1.1 flipped answers). The prompt prefix (system prompt) stays in the KV cache
between calls, so only the transcript is evaluated per call. Flat forms are filled field by field by
the shared walk (``walk.fill_form``), each step one request with an assistant prefill. Both tiers use
the one embedded model.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.analysis.llm.base import (
    TOP_LOGPROBS,
    LLMBackend,
    LLMError,
    LLMInvalidOutput,
    LLMUsage,
    compact_schema,
    parse_json_object,
)
from pipeline.analysis.llm.walk import (
    CHOICE_TOP_LOGPROBS,
    Step,
    TokenLogprob,
    consistent,
    enum_choice_probs,
    fill_form,
    stepwise_fields,
)
from pipeline.models import resolve_gguf
from pipeline.settings import LLMSettings


class EmbeddedLLM(LLMBackend):
    name = "embedded"

    def __init__(self, llm: LLMSettings, models_cache: Path, model: str | None = None) -> None:
        import xllamacpp

        self._x = xllamacpp
        self.settings = llm
        self.model_name = model or llm.embedded_model
        self.path = resolve_gguf(self.model_name, models_cache)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.model_alias = self.model_name
        params.n_ctx = llm.embedded_ctx
        params.n_parallel = 1  # one slot: its KV cache keeps the shared system prompt between calls
        params.cpuparams.n_threads = llm.embedded_threads
        params.cpuparams_batch.n_threads = llm.embedded_threads
        params.n_ubatch = llm.embedded_ubatch
        params.n_batch = max(params.n_batch, llm.embedded_ubatch)
        fa = xllamacpp.llama_flash_attn_type
        params.flash_attn_type = {"auto": fa.LLAMA_FLASH_ATTN_TYPE_AUTO, "on": fa.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                                  "off": fa.LLAMA_FLASH_ATTN_TYPE_DISABLED}[llm.embedded_flash_attn]
        params.warmup = False
        params.verbosity = -1
        params.sampling.temp = llm.temperature
        params.sampling.penalty_repeat = 1.0
        params.sampling.seed = llm.seed
        # xllamacpp also serves an OpenAI-compatible API on a random loopback port; a random key keeps
        # other local users out of it (``http_api_key`` hands it to a client that should get in).
        self.http_api_key = secrets.token_urlsafe(16)
        params.api_keys = [self.http_api_key]
        self._server = xllamacpp.Server(params)
        with _LIVE_LOCK:
            _LIVE_SERVERS.add(id(self._server))
        self._lock = threading.Lock()
        self._grammars: dict[str, str] = {}

    @property
    def http_address(self) -> str:
        return str(self._server.listening_address)

    def model_for(self, tier: str) -> str:
        return self.model_name

    def _grammar(self, schema: Mapping[str, Any]) -> str:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = str(self._x.json_schema_to_grammar(compact_schema(schema)))
            self._grammars[key] = grammar
        return grammar

    def _chat(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            response = self._server.handle_chat_completions(request)
        if not isinstance(response, dict) or "choices" not in response:
            message = response.get("error", response) if isinstance(response, dict) else response
            raise LLMError(f"llama.cpp error: {str(message)[:300]}")
        return response

    def _base_request(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        return {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.settings.temperature,
            "seed": self.settings.seed,
            "repeat_penalty": 1.0,
            "cache_prompt": True,
        }

    def _request(self, system: str, user: str, schema: Mapping[str, Any] | None, max_tokens: int) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        request = self._base_request(messages, max_tokens)
        if schema is not None:
            request["grammar"] = self._grammar(schema)
            request["logprobs"] = True
            request["top_logprobs"] = TOP_LOGPROBS
        return self._chat(request)

    def _step(self, messages: list[dict[str, str]], prefill: str, grammar: str, max_tokens: int) -> dict[str, Any]:
        """One stepwise request: the answer so far goes in as an assistant prefill (see ``walk.fill_form``)."""
        request = self._base_request([*messages, {"role": "assistant", "content": prefill}], max_tokens)
        request.update({"grammar": grammar, "logprobs": True, "top_logprobs": CHOICE_TOP_LOGPROBS})
        return self._chat(request)

    def stepper(self, system: str, user: str, *more: dict[str, str]) -> Step:
        """The ``walk.Step`` of one conversation (system, user, then ``more`` messages): each call is one
        request continuing the given prefill."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}, *more]

        def step(prefill: str, grammar: str, max_tokens: int) -> dict[str, Any]:
            return self._step(messages, prefill, grammar, max_tokens)

        return step

    def follow_up(
        self, system: str, user: str, answer: str, question: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        if stepwise_fields(schema) is None:
            raise LLMError("follow-up questions take a flat form (enum, boolean or short text fields)")
        step = self.stepper(system, user, {"role": "assistant", "content": answer},
                            {"role": "user", "content": question})
        return fill_form(step, schema, self.name, self.model_name)

    def warm(self, system: str) -> None:
        # Evaluates the system prompt once, so the first real call only pays for its transcript.
        self._request(system, "Say OK.", None, 1)

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        if self.settings.embedded_stepwise and stepwise_fields(schema) is not None:
            return fill_form(self.stepper(system, user), schema, self.name, self.model_name)
        started = time.perf_counter()
        response = self._request(system, user, schema, self.settings.max_tokens)
        choice = response["choices"][0]
        content = str(choice["message"].get("content") or "")
        usage_raw = response.get("usage") or {}
        usage = LLMUsage(
            backend=self.name,
            model=self.model_name,
            prompt_tokens=int(usage_raw.get("prompt_tokens", 0)),
            completion_tokens=int(usage_raw.get("completion_tokens", 0)),
            cached_tokens=int((usage_raw.get("prompt_tokens_details") or {}).get("cached_tokens", 0)),
            seconds=time.perf_counter() - started,
            raw=content,
        )
        if choice.get("finish_reason") == "length":
            raise LLMInvalidOutput(f"answer cut off at {self.settings.max_tokens} tokens", content)
        value = parse_json_object(content)
        tokens = [
            TokenLogprob(t["token"], [(a["token"], float(a["logprob"])) for a in t.get("top_logprobs", [])])
            for t in ((choice.get("logprobs") or {}).get("content") or [])
        ]
        usage.choice_probs = consistent(enum_choice_probs(content, tokens, schema), value)
        return value, usage

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with _LIVE_LOCK:
            _LIVE_SERVERS.discard(id(server))
            if _LIVE_SERVERS:
                # Destroying an xllamacpp Server while another one runs in the same process can hang
                # in its thread join (seen with xllamacpp 2026.10); park it until the process exits.
                _PARKED_SERVERS.append(server)
                return
        del server


# Ids of the xllamacpp servers alive in this process, and servers closed while others were alive.
_LIVE_LOCK = threading.Lock()
_LIVE_SERVERS: set[int] = set()
_PARKED_SERVERS: list[Any] = []
