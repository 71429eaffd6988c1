"""What runs inside each task of the compiled pipeline (a Kubeflow Pipelines pod, a Vertex AI
job, a kfp.local subprocess or container): entrypoint, the command every task runs."""
