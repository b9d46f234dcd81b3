"""What every LLM backend shares: the errors, the usage record, the backend interface, JSON parsing."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Log-probabilities asked for on a whole JSON answer (the stepwise walk asks for more, see walk.py).
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

    def follow_up(
        self, system: str, user: str, answer: str, question: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        """A further question about the same call, asked after its answer (``answer``: the answer's raw text):
        the conversation so far is the prompt's unchanged start, so a backend that caches it (llama.cpp's
        slot, Ollama's) pays only for the question. Backends without multi-turn chat refuse."""
        raise LLMError(f"the {self.name} backend asks no follow-up questions")

    @abstractmethod
    def model_for(self, tier: str) -> str: ...

    def warm(self, system: str) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Prepare for calls sharing this system prompt (no-op unless the backend caches prompts)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""


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


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with llguidance told to emit compact JSON (no whitespace tokens to pay for)."""
    out = dict(schema)
    out["x-guidance"] = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return out
