"""The token-probability walk: real probabilities for every allowed value of a JSON form's fields.

One walk (``ChoiceWalk``) turns generated tokens and their top log-probabilities into a distribution
over a field's allowed values. Each step splits the probability of every alternative token among the
values it is consistent with; values sharing the chosen token are decided by the next token, weighted
by the share they took together. The log-probabilities are the model's before the grammar mask, so
alternatives no allowed value fits are dropped and the rest renormalised.

The walk is fed two ways:

* ``fill_form``: a flat form filled field by field through a ``Step`` (one chat request with an
  assistant prefill, a grammar and a token limit; see ``EmbeddedLLM``). Keys and punctuation go in as
  prefill (prompt evaluation, ~4x cheaper per token than decoding on one CPU thread); every
  enum/boolean/turn-number field is decided by one decoding step per token that still tells its values
  apart, the grammar allowing only those values; free text is decoded normally. A value ends when the
  model emits end-of-text.
* ``enum_choice_probs``: the recorded tokens of a whole JSON answer (Ollama, or the embedded model with
  ``embedded_stepwise`` off); a string value ends with its closing quote.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.analysis.llm.base import LLMInvalidOutput, LLMUsage

# Top log-probabilities asked for in each stepwise choice step.
CHOICE_TOP_LOGPROBS = 20
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>")

# One stepwise request: (assistant prefill, llguidance grammar for the continuation, max tokens) ->
# an OpenAI-style chat completion with logprobs (choices[0].message.content, .logprobs, .finish_reason; usage).
Step = Callable[[str, str, int], Mapping[str, Any]]


@dataclass
class TokenLogprob:
    token: str
    alternatives: list[tuple[str, float]]  # (token text, log-probability), best first


class ChoiceWalk:
    """Probability mass over one field's allowed values, updated one generated token at a time.

    ``closing`` is what follows a complete value inside a token: ``""`` when each value is generated on
    its own and ends with end-of-text (the stepwise form), ``'"'`` when replaying a JSON string's tokens.
    """

    def __init__(self, values: Sequence[str], closing: str = "") -> None:
        self.values = list(values)
        self.closing = closing
        self.alive = list(values)  # values still consistent with the tokens chosen so far
        self.consumed = ""  # their common text decided so far
        self.mass = dict.fromkeys(self.values, 0.0)
        self.weight = 1.0  # probability of the path chosen so far

    def _fits(self, token: str, rest: str) -> bool:
        """Whether a token is consistent with the rest of a value (a part of it, or all of it and its end)."""
        end = rest + self.closing
        return bool(token) and (rest.startswith(token) or (token.startswith(end) and bool(end)))

    def rests(self) -> list[str]:
        """What is left to generate of the values still alive, longest first."""
        return sorted({v[len(self.consumed):] for v in self.alive}, key=len, reverse=True)

    def observe(self, chosen: str, alternatives: Sequence[tuple[str, float]]) -> bool:
        """Account for one generated token; True when another token is needed to tell the values apart."""
        dist: dict[str, float] = {}
        for token, logprob in alternatives:
            hits = [v for v in self.alive if self._fits(token, v[len(self.consumed):])]
            for v in hits:
                dist[v] = dist.get(v, 0.0) + math.exp(logprob) / len(hits)
        if not self.closing and (chosen == "" or chosen in END_TOKENS):
            exact = [v for v in self.alive if v == self.consumed]
            if exact:  # the model ended the value here
                self.alive = exact
                return False
        total = sum(dist.values())
        if total <= 0:
            if self.closing:
                return False
            total = 1.0
        for v, p in dist.items():
            self.mass[v] += self.weight * p / total
        if self.closing:
            follow = [v for v in self.alive
                      if v[len(self.consumed):].startswith(chosen) and len(v) - len(self.consumed) > len(chosen)]
            if len(follow) < 2:
                return False
        else:
            follow = [v for v in self.alive if self._fits(chosen, v[len(self.consumed):])]
            if len(follow) <= 1:
                self.alive = follow or self.alive
                return False
        # Values sharing the chosen token are decided later: follow the chosen path.
        shared = sum(dist.get(v, 0.0) for v in follow) / total
        for v in follow:
            self.mass[v] -= self.weight * dist.get(v, 0.0) / total
        self.weight *= shared
        self.alive = follow
        self.consumed += chosen
        return True

    def choice(self) -> str:
        return self.alive[0] if self.alive else self.values[0]

    def probabilities(self) -> dict[str, float]:
        """Every value's probability (rounded); empty when no token gave any signal."""
        norm = sum(self.mass.values())
        if norm <= 0:
            return {}
        return {v: round(m / norm, 4) for v, m in self.mass.items()}

    def decided(self) -> tuple[str, dict[str, float]]:
        """The chosen value and the distribution; the chosen value keeps its path's weight when the
        tokens left it no mass of its own."""
        choice = self.choice()
        if self.mass.get(choice, 0.0) <= 0.0:
            self.mass[choice] = self.weight
        return choice, self.probabilities() or {choice: 1.0}


# ---------------------------------------------------------------------------------------------
# Replay over a whole answer's tokens
# ---------------------------------------------------------------------------------------------
def enum_choice_probs(
    content: str, tokens: Sequence[TokenLogprob], schema: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    """For each top-level enum property, the probability of each allowed value at the point it was chosen."""
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
        probs = _replay(tokens, offsets, match.end(), [str(v) for v in values])
        if probs:
            result[key] = probs
    return result


def _replay(tokens: Sequence[TokenLogprob], offsets: Sequence[int], start: int, values: list[str]) -> dict[str, float]:
    """The walk over the recorded tokens of one string value starting at character ``start``."""
    walk = ChoiceWalk(values, closing='"')
    index = next((i for i in range(len(tokens)) if offsets[i] <= start < offsets[i] + len(tokens[i].token)), None)
    while index is not None and index < len(tokens) and len(walk.alive) > 1:
        tok = tokens[index]
        before = start + len(walk.consumed) - offsets[index]  # chars of this token before the undecided part
        # Only the part of each alternative after those chars counts (alternatives that differ there are
        # other paths, not choices between the values).
        alternatives = [(alt[before:], logprob) for alt, logprob in tok.alternatives
                        if alt[:before] == tok.token[:before]]
        if not walk.observe(tok.token[before:], alternatives):
            break
        index += 1
    return walk.probabilities()


def consistent(probs: dict[str, dict[str, float]], value: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Keep only distributions that agree with the emitted value (a forced token leaves no signal)."""
    return {key: dist for key, dist in probs.items() if dist.get(str(value.get(key)), 0.0) > 0.0}


# ---------------------------------------------------------------------------------------------
# Field-by-field filling
# ---------------------------------------------------------------------------------------------
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


def alternatives_grammar(values: Sequence[str]) -> str:
    """llguidance lark: a choice among literal strings; an empty alternative lets the model stop."""
    literal = [json.dumps(v) for v in values if v]
    body = " | ".join(literal) if literal else '""'
    if any(v == "" for v in values):
        body = f"({body})?"
    return "%llguidance {}\nstart: " + body + "\n"


def string_grammar(schema: Mapping[str, Any]) -> str:
    """The rest of a JSON string after its opening quote: plain characters, then the closing quote."""
    low = max(0, int(schema.get("minLength", 0)))
    high = max(low, int(schema.get("maxLength", 200)))
    return "%llguidance {}\nstart: /[^\"\\\\\\n]{" + f"{low},{high}" + "}/ \"\\\"\"\n"


def fill_form(step: Step, schema: Mapping[str, Any], backend: str, model: str) -> tuple[dict[str, Any], LLMUsage]:
    """Fill a flat JSON form one field at a time (see ``stepwise_fields``) through ``step``."""
    started = time.perf_counter()
    fields = stepwise_fields(schema) or []
    usage = LLMUsage(backend=backend, model=model)
    first_usage: dict[str, Any] = {}

    def counted(prefill: str, grammar: str, max_tokens: int) -> Mapping[str, Any]:
        response = step(prefill, grammar, max_tokens)
        if not first_usage:  # what the KV cache held when the call began: the shared system prompt
            first_usage.update(response.get("usage") or {})
        return response

    value: dict[str, Any] = {}
    prefill = "{"
    generated = 0
    first = True
    for spec in fields:
        prefill += ("" if first else ",") + json.dumps(spec.key) + ":"
        first = False
        if spec.choices is not None:
            choice, probs, steps, info = choose(counted, prefill, spec)
            text = json.dumps(choice) if spec.quoted else choice
            value[spec.key] = json.loads(text)
            usage.choice_probs[spec.key] = probs
        else:
            # The opening quote goes in with the prefill: the generated words then re-tokenise the way
            # they were generated, so the next step finds them in the KV cache.
            prefill += '"'
            response = counted(prefill, string_grammar(spec.schema), spec.max_tokens)
            content = str(response["choices"][0]["message"].get("content") or "")
            text = content[len(prefill):] if content.startswith(prefill) else content
            prefill = prefill[:-1]
            text = '"' + text
            steps, info = int((response.get("usage") or {}).get("completion_tokens", 0)), response
            if response["choices"][0].get("finish_reason") == "length":
                raise LLMInvalidOutput(f"field {spec.key!r} cut off at {spec.max_tokens} tokens", prefill + text)
            try:
                value[spec.key] = json.loads(text)
            except json.JSONDecodeError as err:
                raise LLMInvalidOutput(f"field {spec.key!r}: invalid JSON value {text[:80]!r}",
                                       prefill + text) from err
        prefill += text
        generated += steps
        raw_usage = info.get("usage") or {}
        if raw_usage:
            # Everything the model read that it did not write itself: transcript, keys, punctuation.
            usage.prompt_tokens = int(raw_usage.get("prompt_tokens", 0)) - (generated - steps)
    usage.cached_tokens = int((first_usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    usage.completion_tokens = generated
    usage.raw = prefill + "}"
    usage.seconds = time.perf_counter() - started
    return value, usage


def choose(step: Step, prefill: str, spec: FieldSpec) -> tuple[str, dict[str, float], int, Mapping[str, Any]]:
    """Pick one of ``spec.choices``, one decoding step per token that still tells them apart.

    Each step's top log-probabilities feed the walk, so the answer comes with real probabilities for
    every allowed value. Returns the choice, the probabilities, the steps taken and the last response.
    """
    walk = ChoiceWalk(list(spec.choices or []))
    opening = '"' if spec.quoted else ""
    steps = 0
    response: Mapping[str, Any] = {}
    while len(walk.alive) > 1:
        sofar = prefill + opening + walk.consumed
        response = step(sofar, alternatives_grammar(walk.rests()), 1)
        steps += 1
        entry = ((response["choices"][0].get("logprobs") or {}).get("content") or [{}])[0]
        chosen = str(entry.get("token", ""))
        content = str(response["choices"][0]["message"].get("content") or "")
        if not chosen and content.startswith(sofar):
            chosen = content[len(sofar):]
        alternatives = [(str(a["token"]), float(a["logprob"])) for a in entry.get("top_logprobs", [])]
        if chosen and all(a != chosen for a, _ in alternatives):
            alternatives.append((chosen, max([lp for _, lp in alternatives], default=0.0)))
        if not walk.observe(chosen, alternatives):
            break
    choice, probs = walk.decided()
    return choice, probs, steps, response
