"""The groups `make test`'s two pytest workers (pytest-xdist, `--dist loadgroup`) take whole, and
the order they take them in.

A group is the tests of one module (its module fixtures), joined with every module that reaches
one of the shared session fixtures of tests/conftest.py, so that each is made by one worker
only. Its name carries two tags the scheduler reads (the controller sees node ids, not tests):
`+e2e` when a test of it is marked e2e (the pipeline runs: the suite's longest work) and
`+demo_inputs` when one needs the demo's generated inputs (tests/support/demo_inputs.py)."""

import pytest
from xdist.scheduler import LoadGroupScheduling

# Session fixtures made once per `make test`, however many workers: the tests that use them go to
# one worker. (`pushed_model`, `former_export` and `demo_inputs` are left out: the workers share
# them under a lock, tests/conftest.py.)
SHARED_SESSION_FIXTURES = ("demo_runs", "compiled_runs", "engine", "image", "gpu_image", "docker_host")
E2E_TAG = "+e2e"
DEMO_INPUTS_TAG = "+demo_inputs"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    """One xdist group per set of tests tied together by a module or a shared session fixture."""
    groups = WorkGroups()
    for item in items:
        groups.join(item.module.__name__, *(name for name in item.fixturenames if name in SHARED_SESSION_FIXTURES))
    tags: dict[str, set[str]] = {}
    for item in items:
        group_tags = tags.setdefault(groups.root(item.module.__name__), set())
        if item.get_closest_marker("e2e"):
            group_tags.add(E2E_TAG)
        if "demo_inputs" in item.fixturenames:
            group_tags.add(DEMO_INPUTS_TAG)
    for item in items:
        root = groups.root(item.module.__name__)
        item.add_marker(pytest.mark.xdist_group(root + "".join(sorted(tags[root]))))


class WorkGroups:
    """Union-find over module and fixture names; a group is named by one of its modules."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def root(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, first: str, *others: str) -> None:
        for other in others:
            self.parent[self.root(other)] = self.root(first)


class DemoInputsFirst(LoadGroupScheduling):
    """`--dist loadgroup` that picks the group a worker takes next. While the demo's inputs are
    being made in the background (`maker`, started here once the workers have collected a test
    that needs them), a group that does not need them, so no worker waits; then the longest work
    first: the e2e groups, those needing the inputs before the others. Ties keep xdist's order
    (most tests first)."""

    def __init__(self, config, log, maker):
        super().__init__(config, log)
        self.maker = maker

    def schedule(self) -> None:
        if self.collection is None and any(DEMO_INPUTS_TAG in self._split_scope(node_id)
                                           for ids in self.registered_collections.values() for node_id in ids):
            self.maker.start()
        super().schedule()

    def _assign_work_unit(self, node) -> None:
        made = self.maker.made()

        def order(scope: str) -> tuple[bool, bool, bool]:
            needs_inputs = DEMO_INPUTS_TAG in scope
            return needs_inputs and not made, E2E_TAG not in scope, not needs_inputs

        self.workqueue.move_to_end(min(self.workqueue, key=order), last=False)
        super()._assign_work_unit(node)
