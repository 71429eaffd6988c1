"""The runtime tunables: the settings a compiled pipeline exposes as runtime parameters, which
a user may change per run (`run-compiled --param NAME=VALUE`, KFP's UI). The pipeline's
wiring, the settings' rules and the run page all read this one table."""

from __future__ import annotations

import dataclasses


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


TUNABLES: tuple[Tunable, ...] = (
    Tunable("phase1_epochs", "trainer.phase1_epochs", "Trainer", int),
    Tunable("phase2_epochs", "trainer.phase2_epochs", "Trainer", int),
    Tunable("phase1_learning_rate", "trainer.phase1_learning_rate", "Trainer", float),
    Tunable("phase2_learning_rate", "trainer.phase2_learning_rate", "Trainer", float),
    Tunable("accuracy_bar", "evaluator.accuracy_bar", "Evaluator", float),
)
BY_NAME = {tunable.name: tunable for tunable in TUNABLES}


def of_component(component: str) -> tuple[Tunable, ...]:
    return tuple(tunable for tunable in TUNABLES if tunable.component == component)
