"""bench.eval_rules scores the exact rules on a labelled set without the LLM."""

from __future__ import annotations

from pathlib import Path

from bench.eval_rules import score_rules

REPO = Path(__file__).resolve().parent.parent


def test_rules_alone_score_callbacks_compliance_and_pii_on_a_labelled_set() -> None:
    result = score_rules(REPO / "bench" / "holdout4", "text")
    assert result["calls"] == 62 and result["pii_calls"] == 16
    assert 0.0 <= float(result["compliance_precision"]) <= 1.0 and float(result["callback_f1"]) > 0.5
