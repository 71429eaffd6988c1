"""InfraValidator step: the candidate in TF Serving's loader (TensorFlow's C++ LoadSavedModel,
`components.serving.c_loader`) before the Pusher may push it."""

from components.infra_validator.component import InfraValidator

__all__ = ["InfraValidator"]
