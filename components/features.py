"""The one source of feature keys and label names.

Used by the ExampleGen (what it writes), preprocessing_fn, the model, the eval config and
the serving signatures.
"""

# Raw tf.Example features written by the ExampleGen.
IMAGE_KEY = "image"  # encoded image bytes (JPEG in the real archive)
LABEL_KEY = "label"  # int64: 0 cat, 1 dog
FILENAME_KEY = "image/filename"

# Class names by label index, as TFDS's cats_vs_dogs defines them.
LABEL_NAMES = ("cat", "dog")

# Transformed features written by Transform and read by the Trainer.
TRANSFORMED_IMAGE_KEY = "image_xf"  # bytes: raw uint8 [size, size, 3], row-major (tf.io.decode_raw)
TRANSFORMED_LABEL_KEY = "label_xf"  # int64

# Serving contract.
SERVING_INPUT_KEY = "image_bytes"  # string batch of raw image bytes
PROBABILITY_KEY = "probability"  # float32 sigmoid(logit): probability of "dog"
PREDICTED_LABEL_KEY = "label"  # string "cat" or "dog"
LOGIT_KEY = "logit"
# Signature over serialized tf.Example that TFMA calls; returns PROBABILITY_KEY.
EXAMPLES_SIGNATURE = "from_examples"
# The signature TF Serving calls by default (raw image bytes in SERVING_INPUT_KEY).
SERVING_SIGNATURE = "serving_default"
# Signature returning the Transform's output for serialized tf.Examples.
TRANSFORM_FEATURES_SIGNATURE = "transform_features"
# Input key of the two signatures over serialized tf.Examples.
EXAMPLES_INPUT_KEY = "examples"
