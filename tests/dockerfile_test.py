"""What can be checked of the Kubeflow image without a Docker engine: its base, what it
installs, its user, and that the stack it installs is the one tested here."""

import importlib.metadata
import os
import re
import shlex
import tomllib

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# glibc of the Debian releases the official python images are built on.
DEBIAN_GLIBC = {"bookworm": (2, 36), "trixie": (2, 41)}
MIN_GLIBC = (2, 39)
ENTRYPOINT_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    with open(os.path.join(REPO_ROOT, "Dockerfile")) as dockerfile:
        text = re.sub(r"\\\n", " ", dockerfile.read())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def pyproject():
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)


def test_base_is_python_on_a_debian_with_glibc_2_39_or_newer():
    bases = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "FROM"]
    assert len(bases) == 1
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim-(\w+)", bases[0])
    assert match, f"expected an official python:X.Y-slim-<debian> base, got {bases[0]}"
    assert DEBIAN_GLIBC[match.group(3)] >= MIN_GLIBC
    python = f"{match.group(1)}.{match.group(2)}"
    requires = pyproject()["project"]["requires-python"]
    low, high = re.fullmatch(r">=(\d+\.\d+),<(\d+\.\d+)", requires).groups()
    as_tuple = lambda version: tuple(map(int, version.split(".")))  # noqa: E731
    assert as_tuple(low) <= as_tuple(python) < as_tuple(high)


def test_installs_the_project_with_exactly_pyprojects_pins():
    instructions = dockerfile_instructions()
    copied = [shlex.split(arguments)[:-1] for instruction, arguments in instructions if instruction == "COPY"]
    assert ["pyproject.toml", "README.md"] in copied
    for package in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert [package.rstrip("*")] in copied
    pip_installs = [
        arguments for instruction, arguments in instructions if instruction == "RUN" and "pip install" in arguments
    ]
    assert pip_installs == ["pip install -e ."], "the image installs pyproject's requirements and nothing else"


def test_runs_as_a_non_root_user():
    users = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.parametrize("requirement", pyproject()["project"]["dependencies"])
def test_environment_has_the_pinned_version_the_image_installs(requirement):
    name, version = requirement.split("==")
    assert importlib.metadata.version(re.sub(r"\[.*\]", "", name)) == version


def test_dockerignore_keeps_environments_and_outputs_out_of_the_build_context():
    with open(os.path.join(REPO_ROOT, ".dockerignore")) as file:
        ignored = set(file.read().split())
    assert {".env", ".venv", "outputs", "serving_model", "data/generated"} <= ignored


def test_the_entrypoint_module_the_compiled_spec_calls_is_importable():
    import importlib.util

    assert importlib.util.find_spec(ENTRYPOINT_MODULE) is not None
