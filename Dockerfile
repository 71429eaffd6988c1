# The image the compiled Kubeflow pipeline runs: Python with glibc >= 2.39 (Debian 13),
# the pinned stack and the project, as a non-root user.
FROM python:3.13-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /pipeline

COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY components ./components
COPY data ./data
RUN pip install --upgrade pip && pip install -e .

RUN useradd --create-home --uid 1000 tfx && chown -R tfx /pipeline
USER tfx
