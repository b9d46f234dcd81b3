"""Audit analysis of call transcripts: rules where exact, one structured LLM call where judgement is
needed, and a classifier that learns from reviewer corrections. See ``analyser.Analyser``."""

from pipeline.analysis.analyser import Analyser, apply_correction, correct_record, reanalyse
from pipeline.analysis.classifier import record_correction
from pipeline.analysis.llm import EmbeddedLLM, LLMBackend, OllamaLLM, make_backend

__all__ = [
    "Analyser",
    "EmbeddedLLM",
    "LLMBackend",
    "OllamaLLM",
    "apply_correction",
    "correct_record",
    "make_backend",
    "reanalyse",
    "record_correction",
]
