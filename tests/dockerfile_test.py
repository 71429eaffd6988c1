"""What can be checked of the Kubeflow image without a container engine: its base (a build
argument), what it installs, its numeric user, and that the stack it installs is the one
tested here. tests/image_test.py builds the image and checks it from inside."""

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# glibc of the Debian releases the official python images are built on.
DEBIAN_GLIBC = {"bookworm": (2, 36), "trixie": (2, 41)}
MIN_GLIBC = (2, 39)
# What every compiled task runs, and the TFX entrypoint it hands over to.
ENTRYPOINT_MODULES = ("pipeline.task.entrypoint", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
PIP_CACHE = "/root/.cache/pip"


def dockerfile_text():
    with open(os.path.join(REPO_ROOT, "Dockerfile")) as dockerfile:
        return dockerfile.read()


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def arguments_of(name):
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == name]


def run_commands():
    """Each RUN's (flags, command): flags are its leading --options (such as --mount=...)."""
    runs = []
    for arguments in arguments_of("RUN"):
        words = arguments.split(" ")
        flags = []
        while words and words[0].startswith("--"):
            flags.append(words.pop(0))
        runs.append((flags, re.sub(r"\s+", " ", " ".join(words)).strip()))
    return runs


def build_args_before_from():
    """ARG NAME=DEFAULT declared before the first FROM (the ones FROM may use)."""
    args = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "FROM":
            break
        if instruction == "ARG":
            name, _, default = arguments.partition("=")
            args[name.strip()] = default.strip()
    return args


def pyproject():
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)


def stages():
    """[(stage name or None, base, [stages it copies from])] in order."""
    found = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "FROM":
            base, _, name = arguments.partition(" AS ")
            found.append((name.strip() or None, base.strip(), []))
        elif instruction == "COPY" and arguments.startswith("--from="):
            found[-1][2].append(arguments.split()[0].removeprefix("--from="))
    return found


def stages_built_for(target):
    """The stages a build of `target` (a stage name; None: the last stage) uses."""
    by_name = {name: (base, copies) for name, base, copies in stages() if name}
    base, copies = by_name[target] if target else stages()[-1][1:]
    needed, todo = set(), [base, *copies]
    while todo:
        name = todo.pop()
        if name in by_name and name not in needed:
            needed.add(name)
            todo += [by_name[name][0], *by_name[name][1]]
    return needed


def test_base_is_a_build_argument_defaulting_to_python_on_a_debian_with_glibc_2_39_or_newer():
    bases = {name: base for name, base, _ in stages()}
    assert bases["kubeflow"] == "${BASE_IMAGE}", "the image's stage, its base chosen by the BASE_IMAGE build argument"
    assert stages()[-1][:2] == (None, "kubeflow"), "the default target is the Kubeflow image"
    default = build_args_before_from().get("BASE_IMAGE")
    assert default, "ARG BASE_IMAGE=<default> before FROM"
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim-(\w+)", default)
    assert match, f"expected the official python:X.Y-slim-<debian> image as the default base, got {default}"
    assert DEBIAN_GLIBC[match.group(3)] >= MIN_GLIBC
    python = f"{match.group(1)}.{match.group(2)}"
    requires = pyproject()["project"]["requires-python"]
    low, high = re.fullmatch(r">=(\d+\.\d+),<(\d+\.\d+)", requires).groups()
    as_tuple = lambda version: tuple(map(int, version.split(".")))  # noqa: E731
    assert as_tuple(low) <= as_tuple(python) < as_tuple(high)


def test_the_offline_base_is_the_same_debian_and_python_as_the_default():
    """tools/image/base-from-rootfs stands in for the default base where no registry answers."""
    with open(os.path.join(REPO_ROOT, "tools", "image", "base-from-rootfs")) as script:
        text = script.read()
    default = build_args_before_from()["BASE_IMAGE"]
    suite = re.fullmatch(r"python:\d+\.\d+-slim-(\w+)", default).group(1)
    assert f"DEBIAN_SUITE=${{DEBIAN_SUITE:-{suite}}}" in text
    packages = re.search(r"^PACKAGES=(\S+)", text, re.M).group(1).split(",")
    assert {"python3", "python3-venv", "python3-dev"} <= set(packages)
    # python and pip first on PATH, as in the official image.
    assert re.search(r'--change "ENV PATH=\$VENV/bin:', text) and "VENV=/opt/venv" in text


def test_installs_the_project_with_exactly_pyprojects_pins():
    """First pyproject's pinned dependencies alone (a layer that survives code changes), then
    the project without dependencies: pyproject's requirements and nothing else."""
    copied = [shlex.split(arguments)[:-1] for arguments in arguments_of("COPY")]
    assert copied[0] == ["pyproject.toml"] and ["README.md"] in copied
    for package in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert [package.rstrip("*")] in copied
    pip_installs = [command for _, command in run_commands() if "pip install" in command]
    assert len(pip_installs) == 2, pip_installs
    pins, project = pip_installs
    writes_pins = re.fullmatch(r"python -c \"(.*)\" > (\S+) && pip install -r (\S+) && rm (\S+)", pins)
    assert writes_pins and len({writes_pins.group(2), writes_pins.group(3), writes_pins.group(4)}) == 1, pins
    assert project == "pip install --no-deps -e ."
    # The command that writes the pins file, run here on this checkout's pyproject.toml.
    written = subprocess.run([sys.executable, "-c", writes_pins.group(1)], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert written == pyproject()["project"]["dependencies"]
    assert "PIP_NO_CACHE_DIR" not in dockerfile_text()


def pins_command():
    """The Python program of the RUN that writes the pins file."""
    [pins] = [command for _, command in run_commands() if "pip install -r" in command]
    return re.fullmatch(r"python -c \"(.*)\" > .*", pins).group(1)


def pins_written(gpu=None):
    """The pins file the Dockerfile writes from this checkout's pyproject.toml, with the build
    argument GPU as given (None: unset, as a build without --build-arg GPU)."""
    env = {key: value for key, value in os.environ.items() if key != "GPU"}
    if gpu is not None:
        env["GPU"] = gpu
    return subprocess.run([sys.executable, "-c", pins_command()], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=env)


def test_the_gpu_build_argument_adds_pyprojects_gpu_extra_to_the_pins():
    """`make image-gpu` (--build-arg GPU=1): the same pins plus TensorFlow's and-cuda wheels,
    each pinned; GPU=0, or no argument, the CPU image's pins alone."""
    assert "ARG GPU=0" in [f"{instruction} {arguments}" for instruction, arguments in dockerfile_instructions()]
    dependencies, gpu_extra = pyproject()["project"]["dependencies"], pyproject()["project"]["optional-dependencies"]["gpu"]
    assert pins_written("1").stdout.split() == dependencies + gpu_extra
    assert all(re.fullmatch(r"[\w.\-\[\]]+==[\w.]+", pin) for pin in gpu_extra), gpu_extra
    assert "tensorflow[and-cuda]==" + importlib.metadata.version("tensorflow") in gpu_extra
    assert pins_written("0").stdout.split() == pins_written(None).stdout.split() == dependencies
    refused = pins_written("yes")
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.strip() == "build argument GPU=yes: expected 0 (CPU) or 1 (with the gpu extra)"


def test_pips_downloads_are_cached_between_builds_outside_the_image():
    for flags, command in run_commands():
        if "pip install" in command:
            assert f"--mount=type=cache,target={PIP_CACHE}" in flags, command
    # A `# syntax=` line would make BuildKit fetch its frontend from a registry.
    assert not re.search(r"^#\s*syntax\s*=", dockerfile_text(), re.M | re.I)


def test_installs_c_and_cpp_compilers_from_debian():
    """g++ for pyfarmhash (source only, needed by tensorflow-data-validation), gcc for TF
    Serving's loader (components/serving/run_saved_model.c)."""
    installs = [command for _, command in run_commands() if "apt-get install" in command]
    assert installs, "the compilers come from Debian's packages"
    words = set(" ".join(installs).split())
    assert {"gcc", "g++"} <= words
    install_index = min(i for i, (_, c) in enumerate(run_commands()) if "apt-get install" in c)
    pip_index = min(i for i, (_, c) in enumerate(run_commands()) if "pip install" in c)
    assert install_index < pip_index


def test_the_infra_validators_loader_is_compiled_in_the_image_after_the_project_is_installed():
    commands = [command for _, command in run_commands()]
    build = [i for i, command in enumerate(commands) if "python -m components.serving.c_loader" in command]
    project = max(i for i, command in enumerate(commands) if "pip install --no-deps -e ." in command)
    assert build and build[0] > project


def test_runs_as_a_numeric_non_root_user_that_exists():
    users = arguments_of("USER")
    assert users, "the image runs as a user other than root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: a cluster's runAsNonRoot can only verify a number"
    assert gid == "" or gid.isdigit()
    commands = " ".join(command for _, command in run_commands())
    assert re.search(rf"useradd\b[^&;]*--uid {uid}\b[^&;]*--create-home", commands), "the uid has a user and a home"


def test_the_image_says_it_is_the_image_to_doctor():
    """pipeline/environment/gpu.py reads the environment's mode from this variable."""
    from pipeline.environment import gpu

    assert f"{gpu.IMAGE_ENV_VARIABLE}=image" in arguments_of("ENV")


def test_kfp_launcher_paths_are_writable_by_any_uid():
    """KFP's launcher makes /gcs, /minio and /s3 mirrors of artifact URIs as the task's user."""
    commands = " ".join(command for _, command in run_commands())
    assert re.search(r"mkdir -m 1777 /gcs /minio /s3\b", commands)


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

    for module in ENTRYPOINT_MODULES:
        assert importlib.util.find_spec(module) is not None, module


def test_the_default_target_needs_no_beam_sdk_image():
    """`make image` builds offline: Beam's SDK image is used only by the target beam-worker."""
    assert stages_built_for(None) == {"kubeflow"}
    assert stages_built_for("beam-worker") == {"kubeflow", "beam-sdk"}
    last = [instruction for instruction, _ in dockerfile_instructions()]
    assert "ENTRYPOINT" not in last[len(last) - last[::-1].index("FROM"):], "Kubeflow tasks give their command"


def test_the_beam_worker_target_takes_beams_boot_from_the_sdk_image_of_the_same_versions():
    """Beam's custom-container recipe: /opt/apache/beam from apache/beam_pythonX.Y_sdk of the
    Beam and Python versions the image installs, and its boot as the entrypoint."""
    sdk_image = build_args_before_from()["BEAM_SDK_IMAGE"]
    python = re.fullmatch(r"python:(\d+\.\d+)-slim-\w+", build_args_before_from()["BASE_IMAGE"]).group(1)
    beam = [pin.split("==")[1] for pin in pyproject()["project"]["dependencies"]
            if re.sub(r"\[.*\]", "", pin.split("==")[0]) == "apache-beam"]
    assert sdk_image == f"apache/beam_python{python}_sdk:{beam[0]}"
    assert ("beam-sdk", "${BEAM_SDK_IMAGE}", []) in stages()
    worker = dockerfile_text().split(" AS beam-worker", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=beam-sdk /opt/apache/beam /opt/apache/beam" in worker
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in worker
    assert ("beam-worker", "kubeflow", ["beam-sdk"]) in stages()
