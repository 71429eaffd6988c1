"""RunPage step: the run's page and the metrics, confusion matrix, ROC and verdict that
Kubeflow Pipelines' and Vertex AI's UIs show, written by the pipeline itself."""

from components.run_page.component import RunPage

__all__ = ["RunPage"]
