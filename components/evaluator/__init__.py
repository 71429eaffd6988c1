"""Evaluator step: TFX's Evaluator (TFMA) with the blessing gate of `eval_config`."""

from components.evaluator.component import Evaluator
from components.evaluator.eval_config import build_eval_config

__all__ = ["Evaluator", "build_eval_config"]
