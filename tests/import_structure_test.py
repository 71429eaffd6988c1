"""The project's modules as rooms: no import circle among pipeline/, components/ and data/,
no import inside a function that exists only to dodge one, every module imports alone, and a
local run loads no `tfx.v1` (seconds of every run's start)."""

import ast
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("pipeline", "components", "data")


def module_files() -> dict[str, str]:
    """{dotted module name: path} of every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO_ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
                    modules[dotted.removesuffix(".__init__")] = path
    return modules


MODULES = module_files()


def imported_modules(node: ast.AST, importer: str) -> set[str]:
    """The project modules an import statement loads: each named module and its parent
    packages, except the importer's own packages (loaded before it, whatever it imports)."""
    names = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = importer.split(".")[:-node.level] if not MODULES[importer].endswith("__init__.py") \
                else importer.split(".")[:len(importer.split(".")) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in MODULES and prefix != importer and not importer.startswith(prefix + "."):
                found.add(prefix)
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[str, int, set[str]]]]]:
    """Module-level imports ({module: modules}), and imports inside functions
    ({module: [(function, line, modules)]}); imports under `if TYPE_CHECKING:` run at no time."""
    top_level: dict[str, set[str]] = {name: set() for name in MODULES}
    in_functions: dict[str, list[tuple[str, int, set[str]]]] = {name: [] for name in MODULES}
    for name, path in MODULES.items():
        with open(path) as source:
            tree = ast.parse(source.read(), path)

        def visit(node: ast.AST, function: str | None) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = imported_modules(child, name)
                    if function is None:
                        top_level[name] |= targets
                    elif targets:
                        in_functions[name].append((function, child.lineno, targets))
                scope = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
                visit(child, scope)

        visit(tree, None)
    return top_level, in_functions


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_no_import_circle_among_the_projects_modules():
    top_level, _ = import_graph()
    circles = sorted(name for name in MODULES if name in reachable(top_level, name))
    assert circles == [], f"modules on an import circle: {circles}"


def test_no_import_inside_a_function_dodges_a_circle():
    """An import inside a function is allowed where it only delays a heavy import (the CLI
    starts without TensorFlow); it must not hide a circle: the module it imports must not
    (transitively, at module level) import the importing module."""
    top_level, in_functions = import_graph()
    dodges = [f"{name}.{function} (line {line}) imports {target}"
              for name, imports in in_functions.items() for function, line, targets in imports
              for target in sorted(targets) if name in reachable(top_level, target) | {target}]
    assert dodges == []


def test_the_checker_finds_a_circle_and_a_dodge(tmp_path, monkeypatch):
    """The checks above on a made-up package: a.py imports b at module level, b.py imports a
    inside a function."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {"a": str(tmp_path / "a.py"), "b": str(tmp_path / "b.py")})
    top_level, in_functions = import_graph()
    assert top_level == {"a": {"b"}, "b": set()}
    assert in_functions["b"] == [("f", 2, {"a"})]
    assert "b" in reachable(top_level, "a") and "a" not in reachable(top_level, "b")
    (tmp_path / "b.py").write_text("import a\n")
    top_level, _ = import_graph()
    assert "a" in reachable(top_level, "a")


IMPORT_EACH_ALONE = """
import importlib, sys, traceback
projects = ("pipeline", "components", "data")
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in projects]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone():
    """Each module with none of the project's modules loaded before it (the libraries they
    share stay loaded: one interpreter for all), so none relies on another's being imported
    first."""
    names = sorted(name for name in MODULES if name != "pipeline.__main__")
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE, *names], capture_output=True, text=True,
                            timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def imports_tfx_v1(path: str) -> bool:
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name.startswith("tfx.v1") for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfx.v1"):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "tfx" and any(alias.name == "v1" for alias in node.names):
            return True
    return False


def test_a_local_run_loads_no_tfx_v1():
    """`tfx.v1` loads TFX's extensions, and with them Vertex AI's client: about 5 s more at the
    start of every `python -m pipeline run`. The modules a local run loads (the CLI's, and those
    the run command imports, with all they import) import TFX's own modules instead."""
    top_level, in_functions = import_graph()
    run_imports = {module for function, _, targets in in_functions["pipeline.cli.commands"] if function == "run"
                   for module in targets}
    entry = {"pipeline.__main__", *run_imports}
    loaded = entry | {module for name in entry for module in reachable(top_level, name)}
    assert {"pipeline.runners.local", "pipeline.pipeline"} <= loaded
    assert sorted(name for name in loaded if imports_tfx_v1(MODULES[name])) == []
    assert imports_tfx_v1(MODULES["pipeline.runners.kubeflow"])  # the checker sees `from tfx import v1`


# Packages of components/ that every step may use; every other package is a step.
SHARED_PACKAGES = ("components.config", "components.features", "components.serving")
SERVED_FOLDER_ROOM = "components.serving"
# Names of the served folder's layout beside its version folders: the gate record and a push's
# staging folder (components/serving/baseline.py, versions.py).
SERVED_FOLDER_NAMES = (".gate.json", ".incomplete")
LISTING_CALLS = ("listdir", "scandir", "iterdir", "glob", "walk")


def step_package(module: str) -> str | None:
    """components.trainer.export -> components.trainer; None for the shared packages and the rest."""
    parts = module.split(".")
    if parts[0] != "components" or len(parts) < 2:
        return None
    package = ".".join(parts[:2])
    if package in SHARED_PACKAGES or package not in MODULES or not MODULES[package].endswith("__init__.py"):
        return None
    return package


def data_edges() -> set[tuple[str, str]]:
    """(downstream step package, upstream step package) for each edge of create_pipeline's DAG
    between two of the project's components."""
    from pipeline.config.settings import load_profile
    from pipeline.pipeline import create_pipeline

    edges = set()
    for node in create_pipeline(load_profile("full")).components:  # needs no archive on disk
        for upstream in node.upstream_nodes:
            downstream_package, upstream_package = step_package(type(node).__module__), step_package(type(upstream).__module__)
            if downstream_package and upstream_package:
                edges.add((downstream_package, upstream_package))
    return edges


def test_a_step_imports_another_step_only_along_a_data_edge():
    """Steps sit side by side and share components/config.py, features.py and serving/; a step may
    import its upstream step's code only where that step's output flows into it (the Trainer
    exports the Transform's preprocessing with the model)."""
    top_level, in_functions = import_graph()
    edges = data_edges()
    assert ("components.trainer", "components.transform") in edges
    crossings = []
    for name in MODULES:
        importer = step_package(name)
        targets = top_level[name] | {t for _, _, found in in_functions[name] for t in found}
        for target in sorted(targets):
            imported = step_package(target)
            if importer and imported and imported != importer and (importer, imported) not in edges:
                crossings.append(f"{name} imports {target}")
    assert crossings == []


def test_only_the_serving_room_touches_the_served_folders_layout():
    """Which versions exist, which loads, the next one, the gate record and a push's staging
    folder: only components/serving/ lists a serving folder or names what lies beside its versions."""
    touching = []
    for name, path in MODULES.items():
        if name == SERVED_FOLDER_ROOM or name.startswith(SERVED_FOLDER_ROOM + "."):
            continue
        with open(path) as source:
            tree = ast.parse(source.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    mark in node.value for mark in SERVED_FOLDER_NAMES):
                touching.append(f"{name}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.Call) and node.args:
                function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                argument = ast.unparse(node.args[0])
                if function in LISTING_CALLS and ("serving" in argument or "base_directory" in argument):
                    touching.append(f"{name}:{node.lineno}: {function}({argument})")
    assert touching == []
