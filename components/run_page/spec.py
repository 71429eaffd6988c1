"""RunPageSpec: what the run's page is made of (each input the output of a step upstream) and
the four outputs KFP's UI renders."""

from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.run_page import artifacts

# Inputs: the page's names for them (pipeline/steps.py maps each to the step output it is).
EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"
TRANSFORMED_EXAMPLES_KEY = "transformed_examples"
MODEL_KEY = "model"
MODEL_RUN_KEY = "model_run"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"
INFRA_BLESSING_KEY = "infra_blessing"
PUSHED_MODEL_KEY = "pushed_model"
# Outputs.
PAGE_KEY = "page"
METRICS_KEY = "metrics"
CLASSIFICATION_METRICS_KEY = "classification_metrics"
VERDICT_KEY = "verdict"
# Parameters.
PIPELINE_NAME_KEY = "pipeline_name"
PROFILE_KEY = "profile"
CONFIG_CHANGES_KEY = "config_changes"  # JSON: {`--set` key: [the profile's value, the run's]}
SERVING_DIR_KEY = "serving_dir"  # the Pusher's folder, where the version served now is looked up


class RunPageSpec(ComponentSpec):
    PARAMETERS = {
        PIPELINE_NAME_KEY: ExecutionParameter(type=str),
        PROFILE_KEY: ExecutionParameter(type=str),
        CONFIG_CHANGES_KEY: ExecutionParameter(type=str),
        SERVING_DIR_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        TRANSFORMED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        INFRA_BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing),
        PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {
        PAGE_KEY: ChannelParameter(type=artifacts.HTML),
        METRICS_KEY: ChannelParameter(type=artifacts.Metrics),
        CLASSIFICATION_METRICS_KEY: ChannelParameter(type=artifacts.ClassificationMetrics),
        VERDICT_KEY: ChannelParameter(type=artifacts.Markdown),
    }
