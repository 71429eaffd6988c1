"""The Evaluator's TFMA config: metrics on the held-out split and the blessing gate."""

# TFMA 0.52 no longer re-exports its config protos at the top level.
from tensorflow_model_analysis.proto import config_pb2 as tfma

from components import features

# The signature TFMA calls returns sigmoid probabilities, so the metrics' default 0.5
# threshold is the right one (a logit would need threshold 0).
ACCURACY_METRIC = "binary_accuracy"
ACCURACY_CLASS_NAME = "BinaryAccuracy"  # the gate's metric, as TFMA names its class


def build_eval_config(accuracy_bar: float, max_accuracy_drop: float = 0.0) -> tfma.EvalConfig:
    """BinaryAccuracy must reach `accuracy_bar` and not fall more than `max_accuracy_drop`
    below the baseline (the model being served; absent on the first run)."""
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_bar}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            # TFMA's bound is exclusive; a tiny epsilon lets an equally good model pass.
            absolute={"value": -(max_accuracy_drop + 1e-9)},
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.EXAMPLES_SIGNATURE,
                prediction_key=features.PROBABILITY_KEY,
                label_key=features.LABEL_KEY,
                preprocessing_function_names=[],
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.LABEL_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name=ACCURACY_CLASS_NAME,
                        # The gate looks at the whole split; per-label slices are reported only.
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_threshold)
                        ],
                    ),
                    tfma.MetricConfig(class_name="AUC"),
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                    tfma.MetricConfig(class_name="BinaryCrossentropy"),
                ]
            )
        ],
    )
