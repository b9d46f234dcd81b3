"""LLM backends behind one small interface: ``complete_json(system, user, schema, tier)``.

* ``base``: errors, ``LLMUsage``, the ``LLMBackend`` interface, JSON parsing helpers.
* ``walk``: the one token-probability walk: real probabilities for every enum/boolean/turn-number
  field, from a field-by-field fill (``fill_form``) or from the tokens of a whole answer.
* ``embedded``: ``EmbeddedLLM``, llama.cpp in-process (xllamacpp) with a packaged GGUF.
* ``ollama``: ``OllamaLLM`` (official client, fast and deep tiers) and ``ollama_ready``.
* ``make_backend(settings)``: ``auto`` picks Ollama when its server answers and has the models, else
  the embedded model.

When a backend returns token log-probabilities, ``LLMUsage.choice_probs`` holds, for every enum field
of the schema, the probability of each allowed value: a real confidence instead of a guessed one.
"""

from __future__ import annotations

from pipeline.analysis.llm.base import (
    TOP_LOGPROBS,
    LLMBackend,
    LLMError,
    LLMInvalidOutput,
    LLMUnavailable,
    LLMUsage,
    compact_schema,
    parse_json_object,
    strip_think,
)
from pipeline.analysis.llm.embedded import EmbeddedLLM
from pipeline.analysis.llm.ollama import OllamaLLM, ollama_ready
from pipeline.analysis.llm.walk import (
    CHOICE_TOP_LOGPROBS,
    ChoiceWalk,
    FieldSpec,
    TokenLogprob,
    consistent,
    enum_choice_probs,
    fill_form,
    stepwise_fields,
)
from pipeline.settings import LLMSettings, Settings

__all__ = [
    "CHOICE_TOP_LOGPROBS", "TOP_LOGPROBS", "ChoiceWalk", "EmbeddedLLM", "FieldSpec", "LLMBackend", "LLMError",
    "LLMInvalidOutput", "LLMUnavailable", "LLMUsage", "OllamaLLM", "TokenLogprob", "compact_schema", "consistent",
    "enum_choice_probs", "fill_form", "make_backend", "ollama_ready", "parse_json_object", "stepwise_fields",
    "strip_think", "used_tiers",
]


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
