"""Pure-ML stance checking of news claims against official statements (EN + VI)."""
from .claims import Span, extract_claims, split_statements
from .facts import Fact, extract_facts
from .model import LABELS, Judgement, Reason, StanceModel, load_model, save_model
from .text import normalize, split_sentences

__all__ = [
    "LABELS", "Fact", "Judgement", "Reason", "Span", "StanceModel", "extract_claims", "extract_facts",
    "load_model", "normalize", "save_model", "split_sentences", "split_statements",
]
