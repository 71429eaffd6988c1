"""README's drawing of the DAG is create_pipeline's: the same steps, and edges that are data edges.

How the drawing encodes the DAG (the first code block of README.md):

- a step is written as its component id (a word of the drawing that is one);
- `A -> B` on one line is an edge from A to B;
- a `|` joins the step above it to the step below it, in the same column;
- a bus, a run of `+` and `-` on a line of its own, joins every step reached upward from one
  of its `+` to every step reached downward from one (a fan-out or a fan-in);
- walking up or down a column passes `|` and the lines that name no step (a step's
  description beside or under it) and stops on a line that names one.

The drawing need not draw every data edge: each one it draws must be a data edge, and each data
edge must be drawn or follow from drawn ones (the same steps reach the same steps).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from pipeline.config.settings import load_profile
from pipeline.pipeline import create_pipeline

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
CONNECTOR_LINE = re.compile(r"^[\s|+-]*[|+-][\s|+-]*$")
BUS = re.compile(r"[+-]*\+[+-]*")
WORD = re.compile(r"[A-Za-z]\w*")


@dataclasses.dataclass
class Bus:
    line: int
    start: int
    end: int
    above: set[str] = dataclasses.field(default_factory=set)
    below: set[str] = dataclasses.field(default_factory=set)


def first_code_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return lines[start + 1:end]


class Drawing:
    def __init__(self, lines: list[str], step_ids: set[str]):
        self.lines = lines
        self.names = [[(m.start(), m.end(), m.group()) for m in WORD.finditer(line) if m.group() in step_ids]
                      for line in lines]
        self.buses = [Bus(number, m.start(), m.end()) for number, line in enumerate(lines)
                      if CONNECTOR_LINE.match(line) for m in BUS.finditer(line)]

    def char(self, line: int, column: int) -> str:
        return self.lines[line][column] if column < len(self.lines[line]) else " "

    def bus_at(self, line: int, column: int) -> Bus | None:
        return next((bus for bus in self.buses if bus.line == line and bus.start <= column < bus.end), None)

    def walk(self, line: int, column: int, step: int) -> str | Bus | None:
        """The step or bus the column reaches from `line` on, upward (-1) or downward (+1)."""
        line += step
        while 0 <= line < len(self.lines):
            name = next((name for start, end, name in self.names[line] if start <= column < end), None)
            if name:
                return name
            if self.names[line]:
                return None  # a line that names other steps
            if CONNECTOR_LINE.match(self.lines[line]):
                if self.char(line, column) == "|":
                    line += step
                    continue
                return self.bus_at(line, column)
            line += step  # a description
        return None

    def steps(self) -> set[str]:
        return {name for names in self.names for _, _, name in names}

    def edges(self) -> set[tuple[str, str]]:
        edges = set()
        for number, line in enumerate(self.lines):
            names = self.names[number]
            for (_, end, upstream), (start, _, downstream) in zip(names, names[1:]):
                if line[end:start].strip() == "->":
                    edges.add((upstream, downstream))
            for column, character in enumerate(line):
                bus = self.bus_at(number, column) if character == "+" else None
                if character != "|" and bus is None:
                    continue
                above, below = self.walk(number, column, -1), self.walk(number, column, +1)
                if bus is not None:
                    bus.above |= {above} if isinstance(above, str) else set()
                    bus.below |= {below} if isinstance(below, str) else set()
                elif isinstance(above, str) and isinstance(below, str):
                    edges.add((above, below))
                elif isinstance(above, Bus) and isinstance(below, str):
                    above.below.add(below)
                elif isinstance(above, str) and isinstance(below, Bus):
                    below.above.add(above)
        for bus in self.buses:
            edges |= {(upstream, downstream) for upstream in bus.above for downstream in bus.below}
        return edges


def pipeline_edges() -> tuple[set[str], set[tuple[str, str]]]:
    """create_pipeline's component ids and data edges (upstream id, downstream id)."""
    pipeline = create_pipeline(load_profile("full"))  # the full profile needs no archive on disk
    ids = {node.id for node in pipeline.components}
    return ids, {(upstream.id, node.id) for node in pipeline.components for upstream in node.upstream_nodes}


def closure(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    reached = set(edges)
    while True:
        more = {(a, d) for a, b in reached for c, d in reached if b == c} - reached
        if not more:
            return reached
        reached |= more


def test_the_drawing_names_every_step_and_only_steps():
    ids, _ = pipeline_edges()
    drawing = Drawing(first_code_block(README.read_text()), ids)
    assert drawing.steps() == ids


def test_the_drawings_edges_are_create_pipelines():
    ids, edges = pipeline_edges()
    drawn = Drawing(first_code_block(README.read_text()), ids).edges()
    assert sorted(drawn - edges) == [], "drawn, but no data edge"
    assert sorted(closure(edges) - closure(drawn)) == [], "data edges the drawing neither draws nor implies"


def test_the_reader_finds_chains_fans_and_wrong_edges():
    drawing = Drawing([
        " A -> B        a description",
        "      |        more of it, | not a line",
        "      C",
        "      +------------+",
        "      D            E",
        "       what d does  what e does",
        "      +------------+",
        "      |",
        "      F",
    ], set("ABCDEF"))
    assert drawing.edges() == {("A", "B"), ("B", "C"), ("C", "D"), ("C", "E"), ("D", "F"), ("E", "F")}
    assert closure({("A", "B"), ("B", "C")}) == {("A", "B"), ("B", "C"), ("A", "C")}
