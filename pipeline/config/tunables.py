"""The runtime tunables as settings: each one marked once, beside its field in
components/config.py (`tunable=True`, hence RUNTIME_TUNABLES), here with the setting it stands
for and the step that takes it. A user may change them per run (`run-compiled --param
NAME=VALUE`, KFP's UI); the pipeline's wiring, the settings' rules and the run page read this
table."""

from __future__ import annotations

import dataclasses

from components.config import RUNTIME_TUNABLES
from pipeline import steps

# The step that takes each section's tunables.
SECTION_STEPS = {"trainer": steps.TRAINER.id, "evaluator": steps.EVALUATOR.id}


@dataclasses.dataclass(frozen=True)
class Tunable:
    name: str  # the runtime parameter's name, and the component's exec property
    key: str  # the setting it stands for, as `--set` names it
    component: str  # the component that takes it
    kind: type

    @property
    def field(self) -> str:
        """The config field within its section, e.g. phase1_epochs of trainer.phase1_epochs."""
        return self.key.split(".", 1)[1]


TUNABLES: tuple[Tunable, ...] = tuple(
    Tunable(name, f"{section}.{name}", SECTION_STEPS[section], kind)
    for section, declared in RUNTIME_TUNABLES.items() for name, kind in declared.items())
BY_NAME = {tunable.name: tunable for tunable in TUNABLES}


def of_component(component: str) -> tuple[Tunable, ...]:
    return tuple(tunable for tunable in TUNABLES if tunable.component == component)
