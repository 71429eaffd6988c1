"""A stand-in for the exported model that the Evaluator's tests share: it reads its logit from
an example feature, so each test knows the metrics TFMA must compute."""

import numpy as np
import tensorflow as tf

from components import features

# Logits close to zero: as probabilities (sigmoid) they fall on the right side of 0.5, but a
# metric reading them as probabilities without the sigmoid would call them all "cat".
LOGITS = np.array([0.2, 0.1, 0.3, 0.05, -0.2, -0.1, 0.15, -0.3, 0.25, -0.05], np.float32)
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 1, 0, 0])
# Predicted dog where logit > 0: correct on 7 of 10 (wrong: index 6, 7, 8).
KNOWN_ACCURACY = 0.7


class ScoreModel(tf.Module):
    """Reads its logit from an example feature, returns sigmoid."""

    def __init__(self, logit_feature):
        super().__init__()
        self.logit_feature = logit_feature

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def from_examples(self, examples):
        parsed = tf.io.parse_example(examples, {self.logit_feature: tf.io.FixedLenFeature([1], tf.float32)})
        logit = parsed[self.logit_feature]
        return {features.PROBABILITY_KEY: tf.sigmoid(logit), features.LOGIT_KEY: logit}


def save_score_model(feature: str, export_dir: str) -> str:
    model = ScoreModel(feature)
    tf.saved_model.save(model, export_dir, signatures={features.EXAMPLES_SIGNATURE: model.from_examples})
    return export_dir
