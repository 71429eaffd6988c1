"""InfraValidator step: the candidate in TF Serving's loader (TensorFlow's C++ LoadSavedModel)
before the Pusher may push it; `c_loader` runs a SavedModel in that loader from Python.

The package loads its component on first use, not on import: `python -m
components.infra_validator.c_loader` (make setup, the Dockerfile) imports this package before
it runs c_loader, and a package that had imported c_loader already (the component's executor
does) makes Python warn that c_loader runs twice. It also keeps TensorFlow out of that build.
"""

__all__ = ["InfraValidator"]


def __getattr__(name: str):
    if name == "InfraValidator":
        from components.infra_validator.component import InfraValidator

        return InfraValidator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
