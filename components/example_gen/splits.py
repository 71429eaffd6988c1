"""Output splits given as TFDS split expressions, e.g. {"train": "train[:40%]"}."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import tensorflow_datasets as tfds


from components.config import DataConfig
from tfx.proto import example_gen_pb2

_DEFAULTS = DataConfig()
DEFAULT_SPLITS = {"train": _DEFAULTS.train_split, "eval": _DEFAULTS.eval_split, "test": _DEFAULTS.test_split}
# Size used to check percent expressions before the real size is known.
NOMINAL_NUM_EXAMPLES = 100_000
SPLITS_HELP = "https://www.tensorflow.org/datasets/splits"


@dataclasses.dataclass(frozen=True)
class SourceSplit:
    """What a split expression can refer to: a source split's size and shard lengths."""

    num_examples: int
    shard_lengths: Sequence[int]


def resolve_ranges(splits: Mapping[str, str], source_splits: Mapping[str, SourceSplit]) -> dict[str, list[tuple[str, int, int]]]:
    """Maps each output split to the (source split, start, end) ranges its expression selects.

    Raises ValueError, naming the output split and the fix, for an expression TFDS rejects
    and for expressions that select the same examples.
    """
    if not splits:
        raise ValueError(f"splits is empty; give at least one output split, e.g. {DEFAULT_SPLITS}.")
    ranges = {name: _absolute_ranges(name, expression, source_splits) for name, expression in splits.items()}
    _check_disjoint(splits, ranges)
    return ranges


def check_expressions(splits: Mapping[str, str]) -> None:
    """resolve_ranges against a nominal 'train' split: the checks that need no prepared data."""
    nominal = SourceSplit(NOMINAL_NUM_EXAMPLES, [NOMINAL_NUM_EXAMPLES])
    resolve_ranges(splits, {"train": nominal})


def to_input_config(splits: Mapping[str, str]) -> example_gen_pb2.Input:
    """Split expressions travel as the standard input_config split patterns."""
    return example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=expression) for name, expression in splits.items()]
    )


def from_input_config(input_config: example_gen_pb2.Input) -> dict[str, str]:
    return {split.name: split.pattern for split in input_config.splits}


def _absolute_ranges(name: str, expression: str, source_splits: Mapping[str, SourceSplit]) -> list[tuple[str, int, int]]:
    try:
        instructions = tfds.core.ReadInstruction.from_spec(expression).to_absolute(source_splits)
    except (ValueError, NotImplementedError, AssertionError) as error:
        raise ValueError(
            f"Split {name!r}: TFDS rejects the split expression {expression!r} ({error}). "
            f"Use one of the source splits {sorted(source_splits)} with an optional slice, e.g. "
            f"'train[:40%]'; see {SPLITS_HELP}."
        ) from error
    result = []
    for instruction in instructions:
        size = source_splits[instruction.splitname].num_examples
        start = instruction.from_ or 0
        end = size if instruction.to is None else instruction.to
        result.append((instruction.splitname, start, end))
    return result


def _check_disjoint(splits: Mapping[str, str], ranges: Mapping[str, list[tuple[str, int, int]]]) -> None:
    claimed: list[tuple[str, str, int, int]] = []
    for name, name_ranges in ranges.items():
        for source, start, end in name_ranges:
            for other, other_source, other_start, other_end in claimed:
                if source == other_source and start < other_end and other_start < end:
                    raise ValueError(
                        f"Splits {other!r} ({splits[other]!r}) and {name!r} ({splits[name]!r}) overlap: the same "
                        "examples would land in both. Make the split expressions disjoint, e.g. "
                        f"{DEFAULT_SPLITS}."
                    )
            claimed.append((name, source, start, end))
