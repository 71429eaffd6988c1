"""The RunPage step's outputs, typed as the types Kubeflow Pipelines' and Vertex AI's UIs render.

TFX's Kubeflow compiler gives a custom artifact type whose TYPE_NAME has the form
`<namespace>.<Title>` that name as its schema title
(`tfx.orchestration.kubeflow.v2.compiler_utils.get_artifact_schema`); the backend's launcher
records each output in ML Metadata under its schema's title (kubeflow/pipelines
backend/src/v2/metadata/client.go, `RecordArtifact`, `SchemaToArtifactType`), and the UI picks a
viewer by that type name (frontend/src/components/viewers/MetricsVisualizations.tsx). So these
classes are named as KFP's SDK names its own (sdk/python/kfp/dsl/types/artifact_types.py):

- `system.HTML` and `system.Markdown`: one file at the artifact's URI, which the UI reads and
  shows (a ValueArtifact: TFX makes a file, not a folder, at the URI of a local run's output).
- `system.Metrics`: scalar metrics as the artifact's custom properties.
- `system.ClassificationMetrics`: `confusionMatrix` and `confidenceMetrics` (ROC points) as
  custom properties.

The UI shows only artifacts with a `display_name` custom property; the executor sets one on each.

TFX's container entrypoint rebuilds an artifact from its schema title, which it takes for a
class path when it is not one of TFX's own; pipeline/task/entrypoint.py gives these outputs
the class path (CLASS_PATHS) before TFX reads them.
"""

from __future__ import annotations

from tfx.types import artifact, value_artifact


class _FileArtifact(value_artifact.ValueArtifact):
    """A UTF-8 text file at the artifact's URI."""

    def encode(self, value: str) -> bytes:
        return value.encode("utf-8")

    def decode(self, serialized_value: bytes) -> str:
        return serialized_value.decode("utf-8")


class HTML(_FileArtifact):
    TYPE_NAME = "system.HTML"


class Markdown(_FileArtifact):
    TYPE_NAME = "system.Markdown"


class Metrics(artifact.Artifact):
    TYPE_NAME = "system.Metrics"


class ClassificationMetrics(artifact.Artifact):
    TYPE_NAME = "system.ClassificationMetrics"


KFP_TYPES = (HTML, Markdown, Metrics, ClassificationMetrics)
# Schema title -> the class TFX's entrypoint is to import.
CLASS_PATHS = {cls.TYPE_NAME: f"{cls.__module__}.{cls.__qualname__}" for cls in KFP_TYPES}
