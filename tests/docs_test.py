"""The README and the manual in docs/ stay true: no pipeline run, a few seconds.

- README.md fits a first screen (at most 150 lines) and links every docs/ page;
- every relative link points at a file that exists (and at a heading that exists, when it
  names one);
- every project path written in backticks exists (placeholders such as <version> and paths
  that a run makes, which git ignores, are skipped), and every dotted module path of this
  project names a module and, when it goes one further, a name defined in it;
- every `python -m pipeline ...` command in a code block or in backticks parses with the CLI's
  own parser once its placeholders have concrete values, with `--set` keys the config has and
  `--param` names that are runtime tunables; every flag written alone in backticks is one of
  the CLI's; every `make X` is a Makefile target;
- every path of README's and development.md's layout trees exists, and every package and test
  folder appears in one of them;
- every module, name and project path the code's docstrings write exists.

README's drawing of the DAG is checked against create_pipeline in tests/readme_diagram_test.py.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import pathlib
import re
import shlex
import subprocess

import pytest

from pipeline.cli.main import build_parser
from pipeline.config import tunables
from pipeline.config.settings import available_keys, load_profile

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 150

PROJECT_PREFIXES = ("pipeline/", "components/", "tests/", "tools/", "data/", "docs/", "serving_model/")
MODULE_PREFIXES = ("pipeline.", "components.")
# Paths a run makes (git-ignored), used when git cannot say so itself.
GENERATED_PREFIXES = ("data/generated/",)
# Flags of other programs that the docs write alone in backticks (Beam's, Docker's).
OTHER_PROGRAMS_FLAGS = {"--runner", "--gpus"}

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S*\s+)*(?:tools/in-env\s+)?python -m pipeline(?:\s|$)")
MAKE = re.compile(r"(?:^|[\s;(&|])make\s+([a-z][\w-]*)")


@dataclasses.dataclass(frozen=True)
class Snippet:
    page: pathlib.Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def read_page(page: pathlib.Path) -> tuple[str, list[list[Snippet]]]:
    """The page's prose (code blocks blanked, line numbers kept) and its code blocks' lines."""
    prose, blocks, block = [], [], None
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append(block)
                block = None
            prose.append("")
        elif block is not None:
            block.append(Snippet(page, number, line))
            prose.append("")
        else:
            prose.append(line)
    assert block is None, f"{page.relative_to(REPO)}: a code block is not closed"
    return "\n".join(prose), blocks


def inline_code(page: pathlib.Path) -> list[Snippet]:
    prose, _ = read_page(page)
    return [Snippet(page, prose.count("\n", 0, match.start()) + 1, " ".join(match.group(1).split()))
            for match in INLINE_CODE.finditer(prose) if "\n\n" not in match.group(1)]


def block_commands(page: pathlib.Path) -> list[Snippet]:
    """Command lines of the code blocks, continuation lines joined: a line ending in a
    backslash, or an indented line of further options ([--flag ...] or --flag) under it."""
    _, blocks = read_page(page)
    commands = []
    for block in blocks:
        index = 0
        while index < len(block):
            first = block[index]
            text = first.text.strip()
            index += 1
            while index < len(block):
                following = block[index].text
                if text.endswith("\\"):
                    text = text[:-1].rstrip() + " " + following.strip()
                elif following[:1].isspace() and following.strip()[:1] in ("[", "-"):
                    text += " " + following.strip()
                else:
                    break
                index += 1
            commands.append(Snippet(page, first.line, text))
    return commands


def pipeline_commands() -> list[Snippet]:
    """Whole commands: in code blocks, and in backticks when written to be run (tools/in-env ...)."""
    found = []
    for page in PAGES:
        found += [snippet for snippet in block_commands(page) if COMMAND_START.match(snippet.text)]
        found += [snippet for snippet in inline_code(page)
                  if COMMAND_START.match(snippet.text) and snippet.text.startswith("tools/in-env")]
    return found


def pipeline_mentions() -> list[Snippet]:
    """`python -m pipeline predict` and the like in backticks: a command named, not written out."""
    return [snippet for page in PAGES for snippet in inline_code(page)
            if COMMAND_START.match(snippet.text) and not snippet.text.startswith("tools/in-env")]


def concrete_argv(command: str) -> list[str]:
    """The arguments after `python -m pipeline`, with the synopsis' placeholders made concrete:
    optional parts [..] kept (so their flags are checked), the first of a|b, `...` dropped,
    HOST:PORT, N and <placeholder> given values; other upper-case words (FILE, DIR, IMAGE)
    are valid strings as they are."""
    previous = None
    while previous != command:
        previous = command
        command = re.sub(r"(?<!\S)\[([^\[\]]*)\](?:\.\.\.)?(?!\S)", r"\1", command)
    command = re.sub(r"\.\.\.(?!\S)", "", command)
    command = re.sub(r"(?<![\w/])([\w.-]+)(?:\|[\w.-]+)+(?!\S)", r"\1", command)
    command = re.sub(r"<[^<>\s]+>", "1", command)
    command = re.sub(r"(?<!\S)HOST:PORT(?!\S)", "localhost:8501", command)
    command = re.sub(r"(?<!\S)N(?!\S)", "1", command)
    words = shlex.split(command, comments=True)
    start = words.index("pipeline", words.index("-m"))
    return words[start + 1:]


def parse(argv: list[str]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            return build_parser().parse_args(argv), ""
        except SystemExit:
            return None, stderr.getvalue().strip().splitlines()[-1]


def is_generated(path: str) -> bool:
    """A path a run makes: git ignores it (checked without the index: it need not exist)."""
    try:
        result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO,
                                capture_output=True, timeout=30)
    except OSError:
        return path.startswith(GENERATED_PREFIXES)
    if result.returncode in (0, 1):
        return result.returncode == 0
    return path.startswith(GENERATED_PREFIXES)


def heading_anchors(page: pathlib.Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    prose, _ = read_page(page)
    anchors = set()
    for line in prose.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            title = re.sub(r"[^\w\- ]", "", match.group(1).lower())
            anchors.add(title.replace(" ", "-"))
    return anchors


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.MULTILINE))


def cli_flags() -> set[str]:
    parser = build_parser()
    flags = set(parser._option_string_actions)  # pylint: disable=protected-access
    for action in parser._subparsers._group_actions:  # pylint: disable=protected-access
        for subparser in action.choices.values():
            flags |= set(subparser._option_string_actions)  # pylint: disable=protected-access
    return flags


def top_level_names(module: pathlib.Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {name.id for name in ast.walk(target) if isinstance(name, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def module_path_problem(dotted: str) -> str:
    """Why `dotted` (a module, e.g. pipeline.runners.local, or a name in one, e.g.
    components.trainer.RUN_FN) names nothing; "" when it does."""
    parts = dotted.split(".")
    for length in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:length])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[length:]
            if not rest:
                return ""
            if len(rest) == 1 and rest[0] in top_level_names(module):
                return ""
            return f"{module.relative_to(REPO)} defines no {'.'.join(rest)}"
    return "no such module"


def project_paths() -> list[tuple[Snippet, str]]:
    """Project paths written in backticks or in code blocks' command lines."""
    found = []
    for page in PAGES:
        snippets = inline_code(page) + block_commands(page)
        for snippet in snippets:
            for word in snippet.text.split():
                word = word.strip("\"'(),;:")
                if word.startswith(PROJECT_PREFIXES) and not any(mark in word for mark in "<*$"):
                    found.append((snippet, word))
    return found


def test_readme_fits_a_first_screen():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move details into docs/"


def test_readme_links_every_page_of_the_manual():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(read_page(README)[0])}
    assert DOCS, "docs/ holds no page"
    assert [str(page.relative_to(REPO)) for page in DOCS if page.resolve() not in linked] == []


def test_every_page_of_the_manual_starts_with_what_a_user_does():
    for page in DOCS:
        before_first_section = page.read_text().split("\n## ", 1)[0]
        assert before_first_section.startswith("# "), f"{page.relative_to(REPO)} has no title"
        assert "```" in before_first_section, f"{page.relative_to(REPO)}: no command before its first section"


def test_every_relative_link_points_at_a_file_that_exists():
    broken = []
    for page in PAGES:
        prose, _ = read_page(page)
        for target in LINK.findall(prose):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: ({target}): no such file")
            elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
                broken.append(f"{page.relative_to(REPO)}: ({target}): no such heading")
    assert broken == []


def test_every_project_path_in_backticks_exists():
    missing = sorted({f"{snippet.where}: {path}" for snippet, path in project_paths()
                      if not (REPO / path).exists() and not is_generated(path)})
    assert missing == []


def test_every_module_path_in_backticks_names_a_module():
    problems = []
    for page in PAGES:
        for snippet in inline_code(page):
            for word in snippet.text.split():
                word = word.strip("\"'(),;:")
                if re.fullmatch(r"[a-z_]+(\.[A-Za-z_]\w*)+", word) and word.startswith(MODULE_PREFIXES):
                    problem = module_path_problem(word)
                    if problem:
                        problems.append(f"{snippet.where}: {word}: {problem}")
    assert problems == []


def test_the_docs_have_pipeline_commands_to_check():
    assert len(pipeline_commands()) >= 10


@pytest.mark.parametrize("snippet", pipeline_commands(), ids=lambda snippet: snippet.where)
def test_every_pipeline_command_parses_with_the_cli_parser(snippet):
    argv = concrete_argv(snippet.text)
    args, error = parse(argv)
    assert args is not None, f"{snippet.where}: `{snippet.text}` does not parse: {error}"
    known_keys = set(available_keys(load_profile("demo")))
    for assignment in getattr(args, "overrides", []):
        key = assignment.partition("=")[0]
        if not key.isupper():  # KEY=VALUE, the synopsis' placeholder
            assert key in known_keys, f"{snippet.where}: --set {key}: no such setting"
    for assignment in getattr(args, "params", []):
        name = assignment.partition("=")[0]
        if not name.isupper():
            assert name in tunables.BY_NAME, f"{snippet.where}: --param {name}: no such runtime parameter"


def test_every_command_named_in_backticks_exists():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # pylint: disable=protected-access
    unknown = []
    for snippet in pipeline_mentions():
        words = concrete_argv(snippet.text)
        if words and not words[0].startswith("-") and words[0] not in commands:
            unknown.append(f"{snippet.where}: {words[0]}: not a command of python -m pipeline")
    assert unknown == []


def test_every_flag_written_alone_in_backticks_is_the_clis():
    flags, known_keys = cli_flags(), set(available_keys(load_profile("demo")))
    problems = []
    for page in PAGES:
        for snippet in inline_code(page):
            words = snippet.text.split()
            if not words[0].startswith("--"):
                continue
            for word, value in zip(words, words[1:] + [""]):
                flag = word.split("=", 1)[0]
                if not flag.startswith("--") or "_" in flag or flag in OTHER_PROGRAMS_FLAGS:
                    continue  # a value, or another program's flag (TF Serving's, Beam's)
                if flag not in flags:
                    problems.append(f"{snippet.where}: {flag}: not a flag of python -m pipeline")
                if flag == "--set" and value:
                    key = value.partition("=")[0]
                    if not key.isupper() and key not in known_keys:
                        problems.append(f"{snippet.where}: --set {key}: no such setting")
                if flag == "--param" and value:
                    name = value.partition("=")[0]
                    if not name.isupper() and name not in tunables.BY_NAME:
                        problems.append(f"{snippet.where}: --param {name}: no such runtime parameter")
    assert problems == []


def test_every_make_target_exists():
    targets = makefile_targets()
    missing = []
    for page in PAGES:
        _, blocks = read_page(page)
        snippets = inline_code(page) + [line for block in blocks for line in block]
        for snippet in snippets:
            text = snippet.text.split("#", 1)[0]
            missing += [f"{snippet.where}: make {target}" for target in MAKE.findall(text) if target not in targets]
    assert missing == []


def test_the_placeholders_become_concrete_values():
    assert concrete_argv("tools/in-env python -m pipeline run [--profile demo|full] [--set KEY=VALUE]... "
                         "[--beam-arg ARG]...") == ["run", "--profile", "demo", "--set", "KEY=VALUE", "--beam-arg", "ARG"]
    assert concrete_argv("python -m pipeline predict --server HOST:PORT [--version N] IMAGE...") == [
        "predict", "--server", "localhost:8501", "--version", "1", "IMAGE"]
    assert concrete_argv("python -m pipeline run --set data.train_split='train[:80%]'  # a comment") == [
        "run", "--set", "data.train_split=train[:80%]"]
    assert concrete_argv("python -m pipeline check-serving serving_model/cats_vs_dogs/<version>") == [
        "check-serving", "serving_model/cats_vs_dogs/1"]


def test_a_wrong_flag_fails_to_parse():
    assert parse(concrete_argv("python -m pipeline run --no-such-flag"))[0] is None
    assert parse(concrete_argv("python -m pipeline run --profile demo"))[0] is not None


LAYOUT_PAGES = (README, REPO / "docs" / "development.md")
LAYOUT_ENTRY = re.compile(r"[\w.-]+(?:/[\w.-]+)*/|[\w.-]+(?:/[\w.-]+)*\.\w+")


def layout_paths(page: pathlib.Path) -> list[tuple[int, str]]:
    """(line, path) of every entry of the page's layout tree (the code block under "## Layout"):
    a folder ends in '/', a file has a suffix; an entry's parent is the folder above it that is
    indented less."""
    lines = page.read_text().splitlines()
    start = lines.index("## Layout")
    first = next(i for i in range(start, len(lines)) if FENCE.match(lines[i]))
    end = next(i for i in range(first + 1, len(lines)) if FENCE.match(lines[i]))
    found, parents = [], []  # parents: (indent, folder path)
    for number in range(first + 1, end):
        line = lines[number]
        indent = len(line) - len(line.lstrip())
        entries = []
        for segment in re.split(r"\s{2,}", line.strip()):
            if not LAYOUT_ENTRY.fullmatch(segment):
                break
            entries.append(segment)
        if not entries:
            continue
        parents = [(level, folder) for level, folder in parents if level < indent]
        base = parents[-1][1] if parents else ""
        for entry in entries:
            found.append((number + 1, base + entry))
        if len(entries) == 1 and entries[0].endswith("/"):
            parents.append((indent, base + entries[0]))
    return found


@pytest.mark.parametrize("page", LAYOUT_PAGES, ids=lambda page: page.name)
def test_every_path_of_the_layout_trees_exists(page):
    missing = [f"{page.name}:{line}: {path}" for line, path in layout_paths(page) if not (REPO / path).exists()]
    assert missing == []


def test_every_package_appears_in_a_layout_tree():
    """Each package of pipeline/ and components/ and each test folder is named in README's or
    development.md's layout (development.md's is module by module)."""
    named = {path.rstrip("/") for page in LAYOUT_PAGES for _, path in layout_paths(page)}
    named |= {path.rsplit("/", 1)[0] for path in named if "/" in path}
    folders = [path.parent for top in ("pipeline", "components") for path in (REPO / top).rglob("__init__.py")]
    folders += [path for path in (REPO / "tests").iterdir() if path.is_dir() and any(path.glob("*_test.py"))]
    missing = sorted(str(folder.relative_to(REPO)) for folder in folders
                     if str(folder.relative_to(REPO)) not in named)
    assert missing == []


DOCSTRING_SOURCES = ("pipeline", "components", "data", "tests", "tools")
DOCSTRING_MODULE = re.compile(r"(?<![\w./-])(?:pipeline|components)(?:\.[A-Za-z_]\w*)+")
DOCSTRING_PATH = re.compile(r"(?<![\w./-])(?:pipeline|components|data|tests|tools|docs)/[\w./-]*[\w/]")


def docstrings() -> list[tuple[str, int, str]]:
    """(file, line, docstring) of every module, class and function of the project's code."""
    found = []
    for top in DOCSTRING_SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in [tree, *ast.walk(tree)]:
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    text = ast.get_docstring(node, clean=False)
                    if text:
                        found.append((str(path.relative_to(REPO)), node.body[0].lineno, text))
    return found


def docstring_problems(docs: list[tuple[str, int, str]]) -> list[str]:
    problems = []
    for where, line, text in docs:
        for dotted in DOCSTRING_MODULE.findall(text):
            problem = module_path_problem(dotted)
            if problem:
                problems.append(f"{where}:{line}: {dotted}: {problem}")
        for path in DOCSTRING_PATH.findall(text):
            if not (REPO / path).exists() and not is_generated(path):
                problems.append(f"{where}:{line}: {path}: no such file or folder")
    return problems


def test_every_module_and_path_a_docstring_names_exists():
    """`pipeline.runners.local`, `components.trainer.RUN_FN`, pipeline/runners/local.py and the
    like in the code's docstrings name modules, names and files that exist."""
    assert docstring_problems(docstrings()) == []


def test_the_docstring_check_finds_what_is_gone():
    made_up = [("x.py", 1, "Runs pipeline.runners.no_such_module, see pipeline/runners/gone.py; "
                           "pipeline.pipeline.create_pipeline and pipeline/steps.py exist.")]
    assert docstring_problems(made_up) == [
        "x.py:1: pipeline.runners.no_such_module: pipeline/runners/__init__.py defines no no_such_module",
        "x.py:1: pipeline/runners/gone.py: no such file or folder",
    ]
