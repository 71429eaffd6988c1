"""The groups `make test`'s two pytest workers (pytest-xdist, `--dist loadgroup`) take whole:
the tests of one module (its module fixtures), joined with every module that reaches one of
the shared session fixtures of tests/conftest.py, so that each is made by one worker only."""

import pytest

# Session fixtures made once per `make test`, however many workers: the tests that use them go to
# one worker. (`pushed_model` and `former_export` are left out: the workers share them under a lock,
# tests/conftest.py.)
SHARED_SESSION_FIXTURES = ("demo_runs", "compiled_runs", "engine", "image", "gpu_image", "docker_host")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    """One xdist group per set of tests tied together by a module or a shared session fixture."""
    groups = WorkGroups()
    for item in items:
        groups.join(item.module.__name__, *(name for name in item.fixturenames if name in SHARED_SESSION_FIXTURES))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups.root(item.module.__name__)))


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
