"""InfraValidator step: the candidate in TF Serving's loader (TensorFlow's C++ LoadSavedModel)
before the Pusher may push it; `c_loader` runs a SavedModel in that loader from Python."""

from components.infra_validator.component import InfraValidator

__all__ = ["InfraValidator"]
