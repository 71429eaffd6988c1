"""Trainer step: TFX's Trainer running `training.run_fn` (the recipe's two phases, then the
serving export)."""

from components.trainer.component import Trainer

# The module path TFX imports run_fn from (installed with the project, not uploaded).
RUN_FN = "components.trainer.training.run_fn"

__all__ = ["Trainer", "RUN_FN"]
