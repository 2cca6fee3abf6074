"""Choice state: rules, Default, and the errors of a Choice without a match.

Sources: the ASL specification (states-language.net, "Choice State" and "Choice Rules")
and the AWS developer guide page "Choice workflow state"
(amazon-states-language-choice-state.md), whose example machine is used as is.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import failure_of, output_of


def choice(rules: list[dict[str, Any]], default: bool = True, **extra: Any) -> dict[str, Any]:
    """A Choice whose branches end in Pass states that output their own name."""
    targets = {rule["Next"] for rule in rules} | ({"Default"} if default else set())
    states: dict[str, Any] = {
        "C": {"Type": "Choice", "Choices": rules, **({"Default": "Default"} if default else {})},
        **{t: {"Type": "Pass", "Result": t, "End": True} for t in sorted(targets)},
    }
    states["C"].update(extra)
    return {"StartAt": "C", "States": states}


def rule(operator: str, value: Any, variable: str = "$.v") -> dict[str, Any]:
    return {"Variable": variable, operator: value, "Next": "Match"}


async def chosen(rules: list[dict[str, Any]], data: Any) -> str:
    return await output_of(choice(rules), data)


# --------------------------------------------------------------------------- AWS example

AWS_EXAMPLE = {
    "StartAt": "ChoiceStateX",
    "States": {
        "ChoiceStateX": {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
                {
                    "And": [
                        {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                        {"Variable": "$.value", "NumericLessThan": 30},
                    ],
                    "Next": "ValueInTwenties",
                },
            ],
            "Default": "DefaultState",
        },
        "Public": {"Type": "Pass", "Result": "Public", "End": True},
        "ValueIsZero": {"Type": "Pass", "Result": "ValueIsZero", "End": True},
        "ValueInTwenties": {"Type": "Pass", "Result": "ValueInTwenties", "End": True},
        "DefaultState": {"Type": "Fail", "Cause": "No Matches!"},
    },
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "Private", "value": 22}, "ValueInTwenties"),  # the guide's own input
        ({"type": "Public", "value": 22}, "Public"),
        ({"type": "Private", "value": 0}, "ValueIsZero"),
        ({"type": "Private", "value": 30}, None),
    ],
)
async def test_aws_choice_state_example(data: dict[str, Any], expected: str | None) -> None:
    # AWS guide, "Choice State Example": {"type": "Private", "value": 22} goes to
    # ValueInTwenties; with no match the Default (a Fail state) runs.
    if expected is None:
        error, cause = await failure_of(AWS_EXAMPLE, data)
        # A Fail state without Error: AWS records no error name (shared/asl-cases,
        # assign_base__assign_in_choice_CONDITION_FALSE).
        assert (error, cause) == (None, "No Matches!")
    else:
        assert await output_of(AWS_EXAMPLE, data) == expected


async def test_aws_example_without_type_field_fails() -> None:
    # AWS guide, "Choice State Example": "If the state input doesn't contain the $.type
    # field, the execution fails".
    error, cause = await failure_of(AWS_EXAMPLE, {"value": 22})
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'ChoiceStateX' (entered at the event id "
        "#2). Invalid path '$.type': The choice state's condition path references an "
        "invalid value."
    )


# --------------------------------------------------------------------------- rule order


async def test_first_matching_rule_wins() -> None:
    # AWS guide, "Choice Rules": "transitions to the state specified in the Next field of
    # the first Choice Rule in which the variable matches".
    rules = [
        {"Variable": "$.v", "NumericGreaterThan": 10, "Next": "First"},
        {"Variable": "$.v", "NumericGreaterThan": 0, "Next": "Second"},
    ]
    assert await chosen(rules, {"v": 50}) == "First"
    assert await chosen(rules, {"v": 5}) == "Second"
    assert await chosen(rules, {"v": -5}) == "Default"


async def test_no_match_and_no_default_fails_with_no_choice_matched() -> None:
    # Spec, Appendix A: States.NoChoiceMatched, "A Choice state failed to find a match for
    # the condition field extracted from its input" (AWS guide: "If the Default state isn't
    # specified, the execution fails with an error").
    error, _ = await failure_of(choice([rule("NumericEquals", 1)], default=False), {"v": 2})
    assert error == "States.NoChoiceMatched"


async def test_choice_passes_its_input_unchanged() -> None:
    # Spec, Choice State: a Choice does no work; the next state gets its (filtered) input.
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule("IsPresent", True)], "Default": "Match"},
            "Match": {"Type": "Pass", "End": True},
        },
    }
    assert await output_of(definition, {"v": 1, "w": [2]}) == {"v": 1, "w": [2]}


async def test_choice_input_path_and_output_path() -> None:
    # AWS guide, "Common state fields": Choice accepts InputPath and OutputPath; the rules
    # see the effective input.
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "InputPath": "$.order",
                "OutputPath": "$.id",
                "Choices": [{"Variable": "$.total", "NumericGreaterThan": 100, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Parameters": {"big.$": "$"}, "End": True},
            "Small": {"Type": "Pass", "Parameters": {"small.$": "$"}, "End": True},
        },
    }
    assert await output_of(definition, {"order": {"id": "o-1", "total": 250}}) == {"big": "o-1"}
    assert await output_of(definition, {"order": {"id": "o-2", "total": 5}}) == {"small": "o-2"}


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("operator", "value", "data", "matches"),
    [
        # AWS guide, "Choice Rules" examples: NumericEquals 1, StringEquals "MyString",
        # StringGreaterThan "MyStringABC", TimestampEquals "2001-01-01T12:00:00Z".
        ("NumericEquals", 1, 1, True),
        ("NumericEquals", 1, 1.0, True),
        ("NumericEquals", 1, 2, False),
        ("StringEquals", "MyString", "MyString", True),
        ("StringEquals", "MyString", "mystring", False),
        ("StringGreaterThan", "MyStringABC", "MyStringABD", True),
        ("StringGreaterThan", "MyStringABC", "MyStringAB", False),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00Z", True),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00.000Z", True),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "2001-01-01T13:00:00+01:00", True),
        ("TimestampLessThan", "2001-01-01T12:00:00Z", "2000-12-31T23:59:59Z", True),
        ("TimestampGreaterThanEquals", "2001-01-01T12:00:00Z", "2001-01-01T12:00:00Z", True),
        ("NumericLessThan", 30, 29.999, True),
        ("NumericLessThanEquals", 30, 30, True),
        ("NumericGreaterThan", 30, 30, False),
        ("NumericGreaterThanEquals", 20, 20, True),
        ("StringLessThan", "b", "a", True),
        ("StringLessThanEquals", "b", "b", True),
        ("StringGreaterThanEquals", "b", "a", False),
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", False, True, False),
    ],
)
async def test_comparison_operators(operator: str, value: Any, data: Any, matches: bool) -> None:
    # Spec, "Choice Rules": the comparison operators and their operand types.
    expected = "Match" if matches else "Default"
    assert await chosen([rule(operator, value)], {"v": data}) == expected


@pytest.mark.parametrize(
    ("operator", "value", "data"),
    [
        ("NumericEquals", 1, "1"),
        ("StringEquals", "1", 1),
        ("BooleanEquals", True, "true"),
        ("BooleanEquals", False, 0),
        ("NumericEquals", 0, False),
        ("TimestampEquals", "2001-01-01T12:00:00Z", "not a timestamp"),
        ("TimestampEquals", "2001-01-01T12:00:00Z", 978350400),
    ],
)
async def test_type_mismatch_is_no_match_not_an_error(operator: str, value: Any, data: Any) -> None:
    # AWS guide, "Choice Rules": "Step Functions doesn't attempt to match a numeric field
    # to a string value".
    assert await chosen([rule(operator, value)], {"v": data}) == "Default"


async def test_timestamp_may_match_string_equals() -> None:
    # AWS guide, "Choice Rules": "because timestamp fields are logically strings, it's
    # possible that a field considered to be a timestamp can be matched by a StringEquals
    # comparator".
    stamp = "2016-08-18T17:33:00Z"
    assert await chosen([rule("StringEquals", stamp)], {"v": stamp}) == "Match"


async def test_string_order_follows_java_compare_to() -> None:
    # AWS guide, "Choice Rules": "To understand the behavior of string comparisons, see
    # the Java compareTo documentation". Java compares UTF-16 code units: U+1F600 is the
    # surrogate pair D83D DE00, and 0xD83D < 0xFFFF, so "😀" < "\uffff".
    assert await chosen([rule("StringLessThan", "\uffff")], {"v": "\U0001f600"}) == "Match"
    assert await chosen([rule("StringGreaterThan", "\U0001f600")], {"v": "\uffff"}) == "Match"


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        # Spec, "Choice Rules", StringMatches: "foo*.log" matches "foo23.log", "*.log"
        # matches "zebra.log", "foo*.*" matches "foobar.zebra".
        ("foo*.log", "foo23.log", True),
        ("*.log", "zebra.log", True),
        ("foo*.*", "foobar.zebra", True),
        ("foo*.log", "foo23.txt", False),
        ("*", "", True),
        ("a?c", "abc", False),  # "No characters other than * have any special meaning"
        ("a?c", "a?c", True),
        ("log-\\*.txt", "log-*.txt", True),  # an escaped star matches a literal star
        ("log-\\*.txt", "log-1.txt", False),
        ("back\\\\slash", "back\\slash", True),  # an escaped backslash
        ("abc", "ABC", False),
    ],
)
async def test_string_matches(pattern: str, value: str, matches: bool) -> None:
    # Spec, "Choice Rules", StringMatches (examples in the parameters).
    expected = "Match" if matches else "Default"
    assert await chosen([rule("StringMatches", pattern)], {"v": value}) == expected


@pytest.mark.parametrize(
    ("operator", "data", "matches"),
    [
        ("IsNull", None, True),
        ("IsNull", 0, False),
        ("IsPresent", None, True),
        ("IsNumeric", 1.5, True),
        ("IsNumeric", "1.5", False),
        ("IsNumeric", True, False),
        ("IsString", "", True),
        ("IsString", None, False),
        ("IsBoolean", False, True),
        ("IsBoolean", 0, False),
        ("IsTimestamp", "2016-03-14T01:59:00Z", True),
        ("IsTimestamp", "2016-03-14", False),
        ("IsTimestamp", "2016-03-14T01:59:00", False),
        # AWS guide, "Choice Rules": "An uppercase T must separate the date and time
        # portions" and "An uppercase Z must denote that a numeric time zone offset isn't
        # present".
        ("IsTimestamp", "2016-03-14t01:59:00Z", False),
        ("IsTimestamp", "2016-03-14T01:59:00z", False),
    ],
)
async def test_type_tests(operator: str, data: Any, matches: bool) -> None:
    # Spec, "Choice Rules": IsNull, IsPresent, IsNumeric, IsString, IsBoolean, IsTimestamp.
    assert await chosen([rule(operator, True)], {"v": data}) == ("Match" if matches else "Default")
    assert await chosen([rule(operator, False)], {"v": data}) == ("Default" if matches else "Match")


async def test_is_present_false_on_a_missing_field_is_no_error() -> None:
    # Spec, "Choice Rules": IsPresent tests whether the Variable's path exists.
    assert await chosen([rule("IsPresent", False)], {}) == "Match"
    assert await chosen([rule("IsPresent", True)], {}) == "Default"


async def test_missing_variable_in_a_comparison_is_a_runtime_error() -> None:
    # AWS guide, Choice example: a missing Variable field fails the execution
    # (States.Runtime); only IsPresent tolerates it.
    error, cause = await failure_of(choice([rule("IsNull", True)]), {})
    assert error == "States.Runtime"
    assert cause is not None
    assert cause.endswith(
        "Invalid path '$.v': The choice state's condition path references an invalid value."
    )


@pytest.mark.parametrize(
    ("operator", "data", "matches"),
    [
        ("NumericEqualsPath", {"v": 3, "w": 3.0}, True),
        ("NumericLessThanPath", {"v": 3, "w": 4}, True),
        ("StringEqualsPath", {"v": "a", "w": "a"}, True),
        ("StringGreaterThanPath", {"v": "a", "w": "b"}, False),
        ("BooleanEqualsPath", {"v": True, "w": True}, True),
        (
            "TimestampGreaterThanPath",
            {"v": "2020-01-02T00:00:00Z", "w": "2020-01-01T00:00:00Z"},
            True,
        ),
        ("NumericEqualsPath", {"v": 3, "w": "3"}, False),
    ],
)
async def test_path_comparisons(operator: str, data: dict[str, Any], matches: bool) -> None:
    # Spec, "Choice Rules": each comparison has a "…Path" variant comparing with a value
    # selected from the input.
    expected = "Match" if matches else "Default"
    assert await chosen([rule(operator, "$.w")], data) == expected


async def test_missing_operand_path_is_a_runtime_error() -> None:
    # Spec, "Choice Rules": a "...Path" operand is a path into the input; AWS fails the
    # execution when it selects nothing.
    error, cause = await failure_of(choice([rule("NumericEqualsPath", "$.w")]), {"v": 1})
    assert error == "States.Runtime"
    assert cause is not None
    assert "Invalid path '$.w'" in cause


async def test_and_or_not_nest() -> None:
    # Spec, "Choice Rules": And/Or take non-empty arrays of rules, Not one rule; they nest.
    rules = [
        {
            "Or": [
                {"Variable": "$.kind", "StringEquals": "vip"},
                {
                    "And": [
                        {"Variable": "$.total", "NumericGreaterThan": 100},
                        {"Not": {"Variable": "$.blocked", "BooleanEquals": True}},
                    ]
                },
            ],
            "Next": "Match",
        }
    ]
    assert await chosen(rules, {"kind": "vip", "total": 0, "blocked": True}) == "Match"
    assert await chosen(rules, {"kind": "std", "total": 101, "blocked": False}) == "Match"
    assert await chosen(rules, {"kind": "std", "total": 101, "blocked": True}) == "Default"
    assert await chosen(rules, {"kind": "std", "total": 100, "blocked": False}) == "Default"


async def test_variable_may_select_from_the_context_object() -> None:
    # Spec, "Choice Rules": Variable is a Path; "$$." paths select from the context object.
    rules = [rule("StringEquals", "C", variable="$$.State.Name")]
    assert await chosen(rules, {}) == "Match"


async def test_variable_with_array_index() -> None:
    # AWS guide, "Reference Paths": $.bar[1] style array access in a Variable.
    rules = [rule("StringEquals", "b", variable="$.bar[1]")]
    assert await chosen(rules, {"bar": ["a", "b", "c"]}) == "Match"
