"""The token-probability walk (pipeline/analysis/llm/walk.py): arithmetic on given tokens, and the
field-by-field fill on the real embedded model (SmolLM2, small prompts)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.analysis.llm import EmbeddedLLM
from pipeline.analysis.llm.walk import ChoiceWalk, Step, enum_choice_probs, fill_form, stepwise_fields
from tests.test_analysis_llm import shared_smol

SYSTEM = "You read a short phone call and fill in a JSON form about it."
CALL = ("0 Agent: Good morning, Brightline, Sarah speaking.\n"
        "1 Customer: This is ridiculous, my boiler broke again and nobody came yesterday!\n"
        "2 Agent: I'm sorry. I'll call you back this afternoon with a time.\n"
        "3 Customer: Fine.")
FORM: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "turn": {"type": "integer", "minimum": -1, "maximum": 12},
        "angry": {"type": "boolean"},
        "mood": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "why": {"type": "string", "minLength": 3, "maxLength": 30},
    },
    "required": ["turn", "angry", "mood", "why"],
}


def test_values_sharing_a_token_split_its_probability_by_the_next_token() -> None:
    walk = ChoiceWalk(["10", "11", "2"])
    assert walk.observe("1", [("1", math.log(0.6)), ("2", math.log(0.4))])  # 10 and 11 still undecided
    assert walk.alive == ["10", "11"] and sorted(walk.rests()) == ["0", "1"]
    assert not walk.observe("0", [("0", math.log(0.5)), ("1", math.log(0.5))])
    choice, probs = walk.decided()
    assert choice == "10"
    assert probs == pytest.approx({"10": 0.3, "11": 0.3, "2": 0.4})


def test_alternatives_no_allowed_value_fits_are_dropped_and_the_rest_renormalised() -> None:
    walk = ChoiceWalk(["positive", "neutral", "negative"])
    walk.observe("neg", [("neg", math.log(0.5)), ("hello", math.log(0.3)), ("pos", math.log(0.2))])
    choice, probs = walk.decided()
    assert choice == "negative"
    assert probs == pytest.approx({"positive": 0.2 / 0.7, "neutral": 0.0, "negative": 0.5 / 0.7}, abs=1e-4)


def test_a_value_that_is_a_prefix_of_others_is_chosen_when_the_model_ends_it() -> None:
    walk = ChoiceWalk(["1", "10", "11"])
    assert walk.observe("1", [("1", 0.0)])
    assert not walk.observe("<|im_end|>", [("0", math.log(0.1))])
    assert walk.decided()[0] == "1"


def test_replay_over_a_whole_answer_ends_string_values_at_their_closing_quote() -> None:
    tokens_json = [('{"', []), ("mood", []), ('":"', []),
                   ("ne", [("ne", -0.1), ("pos", -2.5)]), ("utral", [("utral", -0.3), ("gative", -1.4)]),
                   ('"}', [])]
    from pipeline.analysis.llm.walk import TokenLogprob

    tokens = [TokenLogprob(t, alts) for t, alts in tokens_json]
    content = "".join(t.token for t in tokens)
    probs = enum_choice_probs(content, tokens, {"properties": {"mood": {"enum": ["positive", "neutral", "negative"]}}})
    p_ne, p_pos = math.exp(-0.1), math.exp(-2.5)
    p_ut, p_ga = math.exp(-0.3), math.exp(-1.4)
    share = p_ne / (p_ne + p_pos)
    assert probs["mood"] == pytest.approx({"positive": p_pos / (p_ne + p_pos), "neutral": share * p_ut / (p_ut + p_ga),
                                           "negative": share * p_ga / (p_ut + p_ga)}, abs=1e-4)


# --- the real embedded model ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def smol() -> EmbeddedLLM:
    return shared_smol()


def recording(step: Step, log: list[tuple[str, str, int]]) -> Step:
    def wrapped(prefill: str, grammar: str, max_tokens: int) -> Mapping[str, Any]:
        log.append((prefill, grammar, max_tokens))
        return step(prefill, grammar, max_tokens)

    return wrapped


def test_every_choice_field_comes_with_a_distribution_over_all_its_allowed_values(smol: EmbeddedLLM) -> None:
    value, usage = fill_form(smol.stepper(SYSTEM, CALL), FORM, smol.name, smol.model_name)
    assert set(value) == set(FORM["properties"])
    assert -1 <= value["turn"] <= 12 and isinstance(value["angry"], bool) and value["mood"] in {"positive", "neutral",
                                                                                                   "negative"}
    assert 3 <= len(value["why"]) <= 30
    expected = {"turn": {str(v) for v in range(-1, 13)}, "angry": {"true", "false"},
                "mood": {"positive", "neutral", "negative"}}
    assert set(usage.choice_probs) == set(expected)  # free text has no distribution
    for key, values in expected.items():
        probs = usage.choice_probs[key]
        assert set(probs) == values
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert probs[json.dumps(value[key]).strip('"')] > 0.0  # the answer is one the walk gave mass to


def test_the_form_is_compact_json_built_from_the_prefill_and_the_decided_values(smol: EmbeddedLLM) -> None:
    value, usage = fill_form(smol.stepper(SYSTEM, CALL), FORM, smol.name, smol.model_name)
    assert json.loads(usage.raw) == value
    assert usage.raw.startswith('{"turn":') and ", " not in usage.raw.split('"why"')[0]
    assert usage.prompt_tokens > 0 and usage.completion_tokens >= len(FORM["properties"])


def test_each_step_offers_only_the_values_still_possible(smol: EmbeddedLLM) -> None:
    log: list[tuple[str, str, int]] = []
    fill_form(recording(smol.stepper(SYSTEM, CALL), log), FORM, smol.name, smol.model_name)
    turn_steps = [entry for entry in log if entry[0].startswith('{"turn":') and '"angry"' not in entry[0]]
    assert turn_steps[0][1].count('"') == 2 * 14  # -1 .. 12: every value is open at the first step
    if len(turn_steps) > 1:  # "1" then "0", "1", "2" or the end: only 1x values remain
        assert '"-1"' not in turn_steps[1][1] and '"5"' not in turn_steps[1][1]
    assert all(max_tokens == 1 for prefill, _, max_tokens in log if not prefill.endswith('"why":"'))
    mood_steps = [entry for entry in log if '"mood":"' in entry[0] and '"why"' not in entry[0]]
    assert 1 <= len(mood_steps) <= 2 and '"positive"' in mood_steps[0][1]


def test_the_fill_gives_the_same_answer_and_probabilities_every_time(smol: EmbeddedLLM) -> None:
    first = fill_form(smol.stepper(SYSTEM, CALL), FORM, smol.name, smol.model_name)
    again = fill_form(smol.stepper(SYSTEM, CALL), FORM, smol.name, smol.model_name)
    assert first[0] == again[0] and first[1].choice_probs == again[1].choice_probs


def test_forms_with_nested_or_optional_fields_are_not_filled_stepwise() -> None:
    assert stepwise_fields(FORM) is not None
    assert stepwise_fields({**FORM, "required": ["turn"]}) is None
    nested = {"type": "object", "properties": {"a": {"type": "object"}}, "required": ["a"]}
    assert stepwise_fields(nested) is None


def test_a_follow_up_question_is_answered_after_the_form_with_probabilities_and_the_call_in_cache(
        smol: EmbeddedLLM) -> None:
    _, usage = fill_form(smol.stepper(SYSTEM, CALL), FORM, smol.name, smol.model_name)
    yes_no = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    answer, asked = smol.follow_up(SYSTEM, CALL, usage.raw, "Did the agent promise to call back? Answer yes or no.",
                                   yes_no)
    assert answer["answer"] in {"yes", "no"}
    assert set(asked.choice_probs["answer"]) == {"yes", "no"}
    assert sum(asked.choice_probs["answer"].values()) == pytest.approx(1.0, abs=1e-3)
    # The system prompt, the call and the answer were already in llama.cpp's cache: only the question is new.
    assert asked.cached_tokens >= usage.prompt_tokens // 2
