"""A setting's field with its rule beside it: `setting(...)` and its shorthands (`integer`,
`flag`), and the checks they take. The settings are declared with them in components/config.py;
pipeline/config/rules.py applies the rules."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Optional, Union

# Where the rules that need a step's or the pipeline's code are (the table there names their keys).
IN_PIPELINE_RULES = "pipeline.config.rules"
RULE, TUNABLE = "rule", "tunable"  # the field metadata's keys

# A check takes the value and the whole config (PipelineConfig), for rules that read another setting.
Check = Callable[[Any, Any], bool]
Text = Union[str, Callable[[Any], str]]


@dataclasses.dataclass(frozen=True)
class SettingRule:
    """What a setting may be: `check(value, config)`, what the message says is allowed, and a value
    that works (each text a string, or made from the config)."""

    check: Check
    allowed: Text
    example: Text


def setting(default: Any, *, check: Optional[Check] = None, allowed: Optional[Text] = None,
            example: Optional[Text] = None, rule: Optional[str] = None, tunable: bool = False) -> Any:
    """A field with its rule: `check`, `allowed` and `example` here, or `rule` naming the module
    whose table holds it. `tunable`: a runtime parameter of the compiled pipeline too."""
    beside = (check, allowed, example)
    if rule is not None and any(part is not None for part in beside):
        raise TypeError(f"a setting's rule is beside its field or in {rule}, not both")
    if rule is None and any(part is None for part in beside):
        raise TypeError("a setting needs check, allowed and example, or rule naming where its rule is")
    return dataclasses.field(default=default, metadata={RULE: rule or SettingRule(*beside), TUNABLE: tunable})


def integer(default: int, low: int, high: int, *, example: str, note: str = "", tunable: bool = False) -> Any:
    """A setting that takes an integer from `low` to `high` (`note`: what it counts)."""
    allowed = f"an integer from {low} to {high}" + (f" ({note})" if note else "")
    return setting(default, check=int_between(low, high), allowed=allowed, example=example, tunable=tunable)


def flag(default: bool, *, example: str) -> Any:
    """A setting that is true or false."""
    return setting(default, check=is_bool, allowed="true or false", example=example)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def int_between(low: int, high: int) -> Check:
    return lambda value, _: is_int(value) and low <= value <= high


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    def check_number(value: Any, _: Any) -> bool:
        if not is_number(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return check_number


def is_bool(value: Any, _: Any) -> bool:
    return isinstance(value, bool)


def one_of(*choices: str) -> Check:
    return lambda value, _: value in choices


def matches(pattern: re.Pattern, *refused: str) -> Check:
    return lambda value, _: isinstance(value, str) and pattern.fullmatch(value) is not None and value not in refused


def not_an_existing_file(value: Any, _: Any) -> bool:
    return value is None or (isinstance(value, str) and not os.path.isfile(value))


def path_or_none(value: Any, _: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()))
