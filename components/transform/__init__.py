"""Transform step: TFX's Transform running `preprocessing.preprocessing_fn` (decode, resize)."""

from components.transform.component import Transform

# The module path TFX imports preprocessing_fn from (installed with the project, not uploaded).
PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"

__all__ = ["Transform", "PREPROCESSING_FN"]
