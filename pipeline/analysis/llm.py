"""LLM backends behind one small interface: ``complete_json(system, user, schema, tier)``.

* ``EmbeddedLLM``: llama.cpp in-process through xllamacpp with a packaged GGUF. The model is loaded
  once; output is constrained by the JSON schema (llguidance grammar), temperature 0, repeat penalty
  1.0 (1.1 flipped answers). The prompt prefix (system prompt) stays in the KV cache between calls, so
  only the transcript is evaluated per call. Flat forms are filled field by field: keys and punctuation
  go in as an assistant prefill (prompt evaluation, ~4x cheaper per token than decoding on one CPU
  thread), each enum/boolean/turn-number field is decided in one decoding step whose log-probabilities
  give every allowed value's probability, and free text is decoded normally. Both tiers use the one
  embedded model.
* ``OllamaLLM``: the official ``ollama`` client against ``/api/chat`` with ``format`` set to the JSON
  schema, temperature 0, a timeout and keep_alive; a fast and a deep model; ``<think>`` blocks (from
  deepseek-r1) are removed before parsing.
* ``make_backend(settings)``: ``auto`` picks Ollama when its server answers and has the models, else
  the embedded model.

When a backend returns token log-probabilities, ``LLMUsage.choice_probs`` holds, for every enum field
of the schema, the probability of each allowed value: a real confidence instead of a guessed one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.models import resolve_gguf
from pipeline.settings import LLMSettings, Settings

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5


class LLMError(RuntimeError):
    """The LLM could not answer; ``code`` is stable and goes into the record's errors."""

    code = "llm_error"


class LLMUnavailable(LLMError):
    """Server unreachable, timed out, or the model is not there: worth retrying later."""

    code = "llm_unavailable"


class LLMInvalidOutput(LLMError):
    """The answer is not JSON (or not the asked shape)."""

    code = "llm_invalid_output"

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


@dataclass
class LLMUsage:
    backend: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    raw: str = ""
    # enum field -> {allowed value: probability}, from token log-probabilities when available.
    choice_probs: dict[str, dict[str, float]] = field(default_factory=dict)


class LLMBackend(ABC):
    name: str = "llm"

    @abstractmethod
    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        """One chat turn whose answer must match ``schema``; returns the parsed object and its cost."""

    @abstractmethod
    def model_for(self, tier: str) -> str: ...

    def warm(self, system: str) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Prepare for calls sharing this system prompt (no-op unless the backend caches prompts)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""


# ---------------------------------------------------------------------------------------------
# Parsing helpers shared by the backends
# ---------------------------------------------------------------------------------------------
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_think(text: str) -> str:
    """Remove reasoning blocks; a block cut off by the token limit leaves nothing usable before it."""
    text = _THINK.sub("", text)
    if "</think>" in text.lower():
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    if text.lstrip().lower().startswith("<think>"):
        return ""
    return text.strip()


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text`` (code fences and chatter around it are tolerated)."""
    cleaned = strip_think(text)
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start < 0 or end <= start:
        raise LLMInvalidOutput(f"no JSON object in the answer ({len(cleaned)} chars)", text)
    try:
        value = json.loads(cleaned[start : end + 1])
    except json.JSONDecodeError as err:
        raise LLMInvalidOutput(f"invalid JSON: {err.msg} at char {err.pos}", text) from err
    if not isinstance(value, dict):
        raise LLMInvalidOutput("the answer is JSON but not an object", text)
    return value


@dataclass
class TokenLogprob:
    token: str
    alternatives: list[tuple[str, float]]  # (token text, log-probability), best first


def enum_choice_probs(
    content: str, tokens: Sequence[TokenLogprob], schema: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    """For each top-level enum property, the probability of each allowed value at the point it was chosen.

    The log-probabilities are the model's before the grammar mask, so alternatives the grammar forbids
    are dropped and the rest renormalised: the distribution over the allowed values.
    """
    if not tokens:
        return {}
    offsets: list[int] = []
    position = 0
    for tok in tokens:
        offsets.append(position)
        position += len(tok.token)
    text = "".join(t.token for t in tokens)
    result: dict[str, dict[str, float]] = {}
    for key, prop in (schema.get("properties") or {}).items():
        values = prop.get("enum") if isinstance(prop, Mapping) else None
        if not values:
            continue
        match = re.search(r'"' + re.escape(key) + r'"\s*:\s*"', text)
        if match is None:
            continue
        probs = _value_probs(tokens, offsets, match.end(), [str(v) for v in values])
        if probs:
            result[key] = probs
    return result


def _value_probs(
    tokens: Sequence[TokenLogprob], offsets: Sequence[int], start: int, values: list[str]
) -> dict[str, float]:
    alive = values
    consumed = 0  # characters of the value already decided
    mass = dict.fromkeys(values, 0.0)
    weight = 1.0
    index = next((i for i in range(len(tokens)) if offsets[i] <= start < offsets[i] + len(tokens[i].token)), None)
    while index is not None and index < len(tokens) and len(alive) > 1:
        tok = tokens[index]
        before = start + consumed - offsets[index]  # chars of this token that precede the undecided part
        dist: dict[str, float] = {}
        chosen_rest = tok.token[before:]
        for alt, logprob in tok.alternatives:
            if alt[:before] != tok.token[:before]:
                continue
            rest = alt[before:]
            if not rest:
                continue
            hits = [v for v in alive if v[consumed:].startswith(rest) or rest.startswith(v[consumed:] + '"')
                    or rest == v[consumed:]]
            for v in hits:
                dist[v] = dist.get(v, 0.0) + math.exp(logprob) / len(hits)
        total = sum(dist.values())
        if total <= 0:
            break
        for v, p in dist.items():
            mass[v] += weight * p / total
        # Values sharing the chosen token are decided later: follow the chosen path.
        follow = [v for v in alive if v[consumed:].startswith(chosen_rest) and len(v) - consumed > len(chosen_rest)]
        if len(follow) < 2:
            break
        shared = sum(dist.get(v, 0.0) for v in follow) / total
        for v in follow:
            mass[v] -= weight * dist.get(v, 0.0) / total
        weight *= shared
        alive = follow
        consumed += len(chosen_rest)
        index += 1
    norm = sum(mass.values())
    if norm <= 0:
        return {}
    return {v: round(m / norm, 4) for v, m in mass.items()}


def _consistent(probs: dict[str, dict[str, float]], value: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Keep only distributions that agree with the emitted value (a forced token leaves no signal)."""
    return {key: dist for key, dist in probs.items() if dist.get(str(value.get(key)), 0.0) > 0.0}


CHOICE_TOP_LOGPROBS = 20


@dataclass
class FieldSpec:
    key: str
    schema: Mapping[str, Any]
    choices: list[str] | None = None  # the text of each allowed value, for enum/boolean/small-int fields
    quoted: bool = False  # string values: the quotes are written around the choice
    max_tokens: int = 64


def stepwise_fields(schema: Mapping[str, Any]) -> list[FieldSpec] | None:
    """The fields of a flat object schema, or None when field-by-field decoding does not apply."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), Mapping):
        return None
    required = list(schema.get("required") or [])
    properties = schema["properties"]
    if set(required) != set(properties):
        return None
    specs = []
    for key in properties:  # schema order: evidence fields come before the decisions that use them
        prop = properties[key]
        kind = prop.get("type")
        if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
            specs.append(FieldSpec(key, prop, [str(v) for v in prop["enum"]], quoted=True))
        elif kind == "boolean":
            specs.append(FieldSpec(key, prop, ["true", "false"]))
        elif kind == "integer" and "minimum" in prop and "maximum" in prop and prop["maximum"] - prop["minimum"] <= 400:
            specs.append(FieldSpec(key, prop, [str(v) for v in range(int(prop["minimum"]), int(prop["maximum"]) + 1)]))
        elif kind == "string" and "enum" not in prop:
            specs.append(FieldSpec(key, prop, max_tokens=int(prop.get("maxLength", 200)) // 2 + 8))
        else:
            return None
    return specs


def _alternatives_grammar(values: Sequence[str]) -> str:
    # llguidance lark: a choice among literal strings; an empty alternative lets the model stop.
    literal = [json.dumps(v) for v in values if v]
    body = " | ".join(literal) if literal else '""'
    if any(v == "" for v in values):
        body = f"({body})?"
    return "%llguidance {}\nstart: " + body + "\n"


def _string_grammar(schema: Mapping[str, Any]) -> str:
    """The rest of a JSON string after its opening quote: plain characters, then the closing quote."""
    low = max(0, int(schema.get("minLength", 0)))
    high = max(low, int(schema.get("maxLength", 200)))
    return "%llguidance {}\nstart: /[^\"\\\\\\n]{" + f"{low},{high}" + "}/ \"\\\"\"\n"


def _token_fits(token: str, rest: str) -> bool:
    """Whether a generated token is consistent with the rest of a candidate value."""
    return bool(token) and (rest.startswith(token) or (token.startswith(rest) and bool(rest)))


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with llguidance told to emit compact JSON (no whitespace tokens to pay for)."""
    out = dict(schema)
    out["x-guidance"] = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return out


# ---------------------------------------------------------------------------------------------
# Embedded llama.cpp
# ---------------------------------------------------------------------------------------------
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

    def _request(self, system: str, user: str, schema: Mapping[str, Any] | None, max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": self.settings.temperature,
            "seed": self.settings.seed,
            "repeat_penalty": 1.0,
            "cache_prompt": True,
        }
        if schema is not None:
            request["grammar"] = self._grammar(schema)
            request["logprobs"] = True
            request["top_logprobs"] = TOP_LOGPROBS
        with self._lock:
            response = self._server.handle_chat_completions(request)
        if not isinstance(response, dict) or "choices" not in response:
            message = response.get("error", response) if isinstance(response, dict) else response
            raise LLMError(f"llama.cpp error: {str(message)[:300]}")
        return response

    def warm(self, system: str) -> None:
        # Evaluates the system prompt once, so the first real call only pays for its transcript.
        self._request(system, "Say OK.", None, 1)

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        if self.settings.embedded_stepwise and stepwise_fields(schema) is not None:
            return self._complete_stepwise(system, user, schema)
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
        usage.choice_probs = _consistent(enum_choice_probs(content, tokens, schema), value)
        return value, usage

    # Field-by-field decoding --------------------------------------------------------------
    def _step(self, system: str, user: str, prefill: str, grammar: str, max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": prefill}],
            "max_tokens": max_tokens,
            "temperature": self.settings.temperature,
            "seed": self.settings.seed,
            "repeat_penalty": 1.0,
            "cache_prompt": True,
            "grammar": grammar,
            "logprobs": True,
            "top_logprobs": CHOICE_TOP_LOGPROBS,
        }
        with self._lock:
            response = self._server.handle_chat_completions(request)
        if not isinstance(response, dict) or "choices" not in response:
            message = response.get("error", response) if isinstance(response, dict) else response
            raise LLMError(f"llama.cpp error: {str(message)[:300]}")
        return response

    def _complete_stepwise(
        self, system: str, user: str, schema: Mapping[str, Any]
    ) -> tuple[dict[str, Any], LLMUsage]:
        """Fill a flat JSON form one field at a time (see ``stepwise_fields``)."""
        started = time.perf_counter()
        fields = stepwise_fields(schema) or []
        usage = LLMUsage(backend=self.name, model=self.model_name)
        value: dict[str, Any] = {}
        prefill = "{"
        generated = 0
        first = True
        for field_spec in fields:
            prefill += ("" if first else ",") + json.dumps(field_spec.key) + ":"
            first = False
            if field_spec.choices is not None:
                choice, probs, steps, info = self._choose(system, user, prefill, field_spec)
                text = json.dumps(choice) if field_spec.quoted else choice
                value[field_spec.key] = json.loads(text)
                usage.choice_probs[field_spec.key] = probs
            else:
                # The opening quote goes in with the prefill: the generated words then re-tokenise the way
                # they were generated, so the next step finds them in the KV cache.
                prefill += '"'
                grammar = _string_grammar(field_spec.schema)
                response = self._step(system, user, prefill, grammar, field_spec.max_tokens)
                content = str(response["choices"][0]["message"].get("content") or "")
                text = content[len(prefill):] if content.startswith(prefill) else content
                prefill = prefill[:-1]
                text = '"' + text
                steps, info = int((response.get("usage") or {}).get("completion_tokens", 0)), response
                if response["choices"][0].get("finish_reason") == "length":
                    raise LLMInvalidOutput(f"field {field_spec.key!r} cut off at {field_spec.max_tokens} tokens",
                                           prefill + text)
                try:
                    value[field_spec.key] = json.loads(text)
                except json.JSONDecodeError as err:
                    raise LLMInvalidOutput(f"field {field_spec.key!r}: invalid JSON value {text[:80]!r}",
                                           prefill + text) from err
            prefill += text
            generated += steps
            raw_usage = info.get("usage") or {}
            if raw_usage:
                if usage.prompt_tokens == 0:
                    usage.cached_tokens = int((raw_usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
                # Everything the model read that it did not write itself: transcript, keys, punctuation.
                usage.prompt_tokens = int(raw_usage.get("prompt_tokens", 0)) - (generated - steps)
        usage.completion_tokens = generated
        usage.raw = prefill + "}"
        usage.seconds = time.perf_counter() - started
        return value, usage

    def _choose(
        self, system: str, user: str, prefill: str, spec: FieldSpec
    ) -> tuple[str, dict[str, float], int, dict[str, Any]]:
        """Pick one of ``spec.choices``, one decoding step per token that still tells them apart.

        Each step's top log-probabilities give the distribution over the values still possible, so the
        answer comes with real probabilities for every allowed value.
        """
        choices = list(spec.choices or [])
        opening = '"' if spec.quoted else ""
        consumed = ""
        alive = choices
        mass = dict.fromkeys(choices, 0.0)
        weight = 1.0
        steps = 0
        response: dict[str, Any] = {}
        while True:
            suffixes = sorted({c[len(consumed):] for c in alive}, key=len, reverse=True)
            if len(alive) == 1:
                break
            grammar = _alternatives_grammar(suffixes)
            response = self._step(system, user, prefill + opening + consumed, grammar, 1)
            steps += 1
            entry = ((response["choices"][0].get("logprobs") or {}).get("content") or [{}])[0]
            chosen = str(entry.get("token", ""))
            content = str(response["choices"][0]["message"].get("content") or "")
            if not chosen and content.startswith(prefill + opening + consumed):
                chosen = content[len(prefill + opening + consumed):]
            alternatives = [(str(a["token"]), float(a["logprob"])) for a in entry.get("top_logprobs", [])]
            if chosen and all(a != chosen for a, _ in alternatives):
                alternatives.append((chosen, max([lp for _, lp in alternatives], default=0.0)))
            dist: dict[str, float] = {}
            for token, logprob in alternatives:
                hits = [c for c in alive if _token_fits(token, c[len(consumed):])]
                for c in hits:
                    dist[c] = dist.get(c, 0.0) + math.exp(logprob) / len(hits)
            if chosen == "" or chosen in ("<|im_end|>", "<|endoftext|>", "</s>"):
                exact = [c for c in alive if c == consumed]
                if exact:
                    dist[exact[0]] = dist.get(exact[0], 0.0) + 1e-9
                    alive = exact
                    break
            total = sum(dist.values()) or 1.0
            for c, p in dist.items():
                mass[c] += weight * p / total
            follow = [c for c in alive if _token_fits(chosen, c[len(consumed):])]
            if not follow:
                break
            if len(follow) == 1:
                alive = follow
                break
            shared = sum(dist.get(c, 0.0) for c in follow) / total
            for c in follow:
                mass[c] -= weight * dist.get(c, 0.0) / total
            weight *= shared
            alive = follow
            consumed += chosen
        choice = alive[0] if alive else choices[0]
        if mass.get(choice, 0.0) <= 0.0:
            mass[choice] = weight
        norm = sum(mass.values())
        probs = {c: round(m / norm, 4) for c, m in mass.items()} if norm > 0 else {choice: 1.0}
        return choice, probs, steps, response

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


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------
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
        import httpx

        model = self.model_for(tier)
        started = time.perf_counter()
        try:
            response = self.client.chat(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
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
            usage.choice_probs = _consistent(enum_choice_probs(content, tokens, schema), value)
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


def used_tiers(llm: LLMSettings) -> list[str]:
    return sorted({"fast", *llm.tier_for.values()})


def make_backend(settings: Settings) -> LLMBackend:
    """The configured backend; ``auto`` prefers a ready Ollama server, else the embedded model."""
    llm = settings.llm
    if llm.backend == "ollama":
        return OllamaLLM(llm)
    if llm.backend == "embedded":
        return EmbeddedLLM(llm, settings.models_cache)
    if ollama_ready(llm, used_tiers(llm)):
        return OllamaLLM(llm)
    return EmbeddedLLM(llm, settings.models_cache)
