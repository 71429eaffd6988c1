# The image the compiled Kubeflow pipeline runs (README, "Deploying to Kubeflow Pipelines"):
# Python 3.13 on Debian 13 (glibc 2.41; TFX 1.21's wheels need glibc >= 2.39), the stack
# pinned in pyproject.toml and this project, run as a non-root user. Each task's command
# is set by the compiled pipeline: python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor
FROM python:3.13-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /pipeline

COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY components ./components
COPY data ./data
RUN pip install -e .

# TFDS and Keras cache downloads under the user's home.
RUN useradd --create-home --uid 1000 tfx
USER tfx
