"""The names `trainer.accelerator` may take: the accelerator type of the Trainer's GPU request in
the compiled Kubeflow spec, and what each backend does with it.

- Open-source Kubeflow Pipelines: its driver (backend/src/v2/driver/driver.go, the pod spec
  patch) puts the type into the Trainer container's resource limits as a Kubernetes resource
  name, `limits: {<type>: <count>}`. So the type must be a resource the GPU nodes advertise:
  `nvidia.com/gpu` from NVIDIA's device plugin (or the GPU operator), or another `nvidia.com/`
  resource such as a MIG slice (`nvidia.com/mig-1g.5gb`).
- Vertex AI Pipelines: the type is a machine's accelerator, named by Vertex's AcceleratorType
  enum (`NVIDIA_L4`, `NVIDIA_TESLA_T4`, ...), read here from google-cloud-aiplatform (a TFX
  dependency), so the list is the installed client's.
"""

from __future__ import annotations

import functools
import re

KUBERNETES_GPU = "nvidia.com/gpu"
# A Kubernetes extended resource of NVIDIA's: its DNS prefix, then a name.
NVIDIA_RESOURCE = re.compile(r"nvidia\.com/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
# Vertex AI GPUs that TensorFlow 2.21's CUDA build cannot run on (its build info lists compute
# capabilities from sm_60 up), with the reason.
UNUSABLE_VERTEX_GPUS = {
    "NVIDIA_TESLA_K80": "compute capability 3.7, below the 6.0 that TensorFlow 2.21's CUDA build starts at",
}


@functools.cache
def vertex_gpu_names() -> tuple[str, ...]:
    """The GPU members of Vertex AI's AcceleratorType enum (the TPUs left out: the image is CUDA's),
    less those TensorFlow cannot use. Imported when first needed: the client's types take a
    second to load."""
    from google.cloud.aiplatform_v1.types import AcceleratorType

    return tuple(name for name in AcceleratorType.__members__
                 if name.startswith("NVIDIA_") and name not in UNUSABLE_VERTEX_GPUS)


def is_kubernetes_resource(name: str) -> bool:
    return NVIDIA_RESOURCE.fullmatch(name) is not None


def is_known(name: object) -> bool:
    """A Kubernetes GPU resource (open-source KFP) or a usable Vertex AI GPU name."""
    return isinstance(name, str) and (is_kubernetes_resource(name) or name in vertex_gpu_names())
