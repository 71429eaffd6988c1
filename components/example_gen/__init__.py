"""ExampleGen step: cats_vs_dogs through TFDS's builder (or a two-class image folder) as tf.Examples
in the splits train / eval / test."""

from components.config import EVAL_SPLIT, TEST_SPLIT, TRAIN_SPLIT
from components.example_gen.component import TfdsExampleGen

__all__ = ["TfdsExampleGen", "TRAIN_SPLIT", "EVAL_SPLIT", "TEST_SPLIT"]
