"""Tests for statefleet.statemachine.intrinsics (the States.* functions and the JSONata extras).

Expected values come from three places, named at each test:

* the examples on the AWS Step Functions "Intrinsic functions" page ("AWS docs example"),
* executions AWS recorded (the shared cases in ../shared/asl-cases, and LocalStack's
  AWS-validated snapshots, "AWS-recorded"),
* this module's own rules where AWS's behaviour is not recorded (error wording).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path as FilePath
from typing import Any

import jsonata
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statefleet.errors import ErrorName, RuntimeFailure
from statefleet.statemachine.intrinsics import (
    FUNCTION_NAMES,
    JSONATA_FUNCTIONS,
    Intrinsic,
    IntrinsicSyntaxError,
    JsonataFunctionError,
    compile_intrinsic,
    is_intrinsic,
)

CASES = FilePath(__file__).resolve().parents[2].parent / "shared" / "asl-cases" / "cases"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run(text: str, data: Any = None, context: Any = None, variables: Any = None) -> Any:
    return compile_intrinsic(text).evaluate(data, context or {}, variables or {})


def failure(text: str, data: Any = None, context: Any = None, variables: Any = None) -> str:
    """The cause of the RuntimeFailure the call raises (its error must be States.Runtime)."""
    with pytest.raises(RuntimeFailure) as info:
        run(text, data, context, variables)
    assert info.value.error == ErrorName.RUNTIME
    cause = info.value.cause
    assert cause is not None
    prefix = f"The function '{text}' had the following error: "
    assert cause.startswith(prefix), cause
    return cause[len(prefix) :]


def syntax_error(text: str) -> str:
    with pytest.raises(IntrinsicSyntaxError) as info:
        compile_intrinsic(text)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality that also tells 1 from 1.0 from True."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return bool(a == b)


def escape(text: str) -> str:
    """Write ``text`` as the inside of an intrinsic string literal."""
    return re.sub(r"([\\'{}])", r"\\\1", text)


# --------------------------------------------------------------------------- AWS docs examples


def test_format_doc_example() -> None:
    # AWS docs example, States.Format: input {"name": "Arnav", "template": "Hello, my name is {}."}
    data = {"name": "Arnav", "template": "Hello, my name is {}."}
    assert run("States.Format('Hello, my name is {}.', $.name)", data) == "Hello, my name is Arnav."
    assert run("States.Format($.template, $.name)", data) == "Hello, my name is Arnav."


def test_string_to_json_doc_example() -> None:
    # AWS docs example, States.StringToJson: {"escapedJsonString": "{\"foo\": \"bar\"}"}
    data = {"escapedJsonString": '{"foo": "bar"}'}
    assert run("States.StringToJson($.escapedJsonString)", data) == {"foo": "bar"}


def test_json_to_string_doc_example() -> None:
    # AWS docs example, States.JsonToString: {"unescapedJson": {"foo": "bar"}}. The page shows
    # {"foo": "bar"}; AWS actually prints compact JSON (see the AWS-recorded test below).
    data = {"unescapedJson": {"foo": "bar"}}
    assert run("States.JsonToString($.unescapedJson)", data) == '{"foo":"bar"}'


def test_array_doc_example() -> None:
    # AWS docs example, States.Array: {"Id": 123456} -> [123456]
    assert run("States.Array($.Id)", {"Id": 123456}) == [123456]
    assert run("States.Array()") == []


def test_array_partition_doc_example() -> None:
    # AWS docs example, States.ArrayPartition: {"inputArray": [1..9]}, chunks of 4
    data = {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}
    assert run("States.ArrayPartition($.inputArray,4)", data) == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_array_contains_doc_example() -> None:
    # AWS docs example, States.ArrayContains: {"inputArray": [1..9], "lookingFor": 5} -> true
    data = {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}
    assert run("States.ArrayContains($.inputArray, $.lookingFor)", data) is True
    assert run("States.ArrayContains($.inputArray, 10)", data) is False


def test_array_range_doc_example() -> None:
    # AWS docs example, States.ArrayRange(1, 9, 2) -> [1,3,5,7,9]
    assert run("States.ArrayRange(1, 9, 2)") == [1, 3, 5, 7, 9]


def test_array_get_item_doc_example() -> None:
    # AWS docs example, States.ArrayGetItem: {"inputArray": [1..9], "index": 5} -> 6
    data = {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}
    assert run("States.ArrayGetItem($.inputArray, $.index)", data) == 6


def test_array_length_doc_example() -> None:
    # AWS docs example, States.ArrayLength: {"inputArray": [1..9]} -> 9
    assert run("States.ArrayLength($.inputArray)", {"inputArray": list(range(1, 10))}) == 9


def test_array_unique_doc_example() -> None:
    # AWS docs example, States.ArrayUnique: [1,2,3,3,3,3,3,3,4] -> [1,2,3,4]
    data = {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}
    assert run("States.ArrayUnique($.inputArray)", data) == [1, 2, 3, 4]


def test_base64_doc_examples() -> None:
    # AWS docs examples, States.Base64Encode / States.Base64Decode: "Data to encode"
    assert run("States.Base64Encode($.input)", {"input": "Data to encode"}) == (
        "RGF0YSB0byBlbmNvZGU="
    )
    assert run("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}) == (
        "Data to encode"
    )


def test_hash_doc_example() -> None:
    # AWS docs example, States.Hash: {"Data": "input data", "Algorithm": "SHA-1"}; the page's
    # digest misses a digit, the AWS-recorded case has all 40.
    data = {"Data": "input data", "Algorithm": "SHA-1"}
    assert run("States.Hash($.Data, $.Algorithm)", data) == (
        "aaff4a450a104cd177d28d18d74485e8cae074b7"
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_hash_algorithms(algorithm: str) -> None:
    expected = hashlib.new(algorithm.replace("-", "").lower(), b"input data").hexdigest()
    assert run(f"States.Hash('input data', '{algorithm}')") == expected


def test_json_merge_doc_example() -> None:
    # AWS docs example, States.JsonMerge: shallow merge, the second object wins on "a"
    data = {
        "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
        "json2": {"a": {"a3": 1, "a4": 2}, "c": 3},
    }
    assert run("States.JsonMerge($.json1, $.json2, false)", data) == {
        "a": {"a3": 1, "a4": 2},
        "b": 2,
        "c": 3,
    }


def test_math_random_doc_example() -> None:
    # AWS docs example, States.MathRandom: {"start": 1, "end": 999}, with and without a seed
    data = {"start": 1, "end": 999}
    for _ in range(50):
        value = run("States.MathRandom($.start, $.end)", data)
        assert type(value) is int
        assert 1 <= value < 999
    seeded = [run("States.MathRandom($.start, $.end, 7)", data) for _ in range(3)]
    assert seeded[0] == seeded[1] == seeded[2]


def test_math_add_doc_example() -> None:
    # AWS docs example, States.MathAdd: {"value1": 111, "step": -1} -> 110
    assert run("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}) == 110


def test_string_split_doc_examples() -> None:
    # AWS docs examples, States.StringSplit: "1,2,3,4,5" on ","; "This.is+a,test=string" on ".+,="
    data = {"inputString": "1,2,3,4,5", "splitter": ","}
    assert run("States.StringSplit($.inputString, $.splitter)", data) == ["1", "2", "3", "4", "5"]
    data = {"inputString": "This.is+a,test=string", "splitter": ".+,="}
    assert run("States.StringSplit($.inputString, $.splitter)", data) == [
        "This",
        "is",
        "a",
        "test",
        "string",
    ]


def test_uuid_doc_example() -> None:
    # AWS docs example, States.UUID(): a version 4 UUID
    first, second = run("States.UUID()"), run("States.UUID()")
    assert UUID4.match(first)
    assert first != second


def test_nested_calls_doc_example() -> None:
    # AWS docs example: nine nested intrinsic functions in one field. The page's format string
    # is '{}.{}.{}' for two values, which the ASL spec forbids ("as many remaining arguments as
    # occurrences of {}"), so it is '{}.{}' here; the mismatch itself is a syntax error below.
    text = (
        "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
        "States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem("
        "States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), "
        "'.'), 1))"
    )
    data = {"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:1:image-recipe/name/1.2.3"}}
    assert run(text, data) == "1.2"
    assert "3 placeholders '{}' but 2 values" in syntax_error(text.replace("{}.{}", "{}.{}.{}", 1))


def test_escapes_doc_example() -> None:
    # AWS docs, "Reserved characters": \' \{ \} \\ stand for ' { } \
    assert run("States.Format('\\'\\{\\}\\\\ {}', 1)") == "'{}\\ 1"
    assert run("States.Array('it\\'s')") == ["it's"]


# --------------------------------------------------------------------------- AWS-recorded values


def test_format_renders_values_as_aws_recorded() -> None:
    # AWS-recorded (LocalStack snapshot test_generic::test_format_1/_2)
    text = "States.Format('Formatting argument {}.', $.FunctionInput)"
    assert run(text, {"FunctionInput": ""}) == "Formatting argument ."
    assert run(text, {"FunctionInput": None}) == "Formatting argument null."
    assert run(text, {"FunctionInput": 1}) == "Formatting argument 1."
    assert run(text, {"FunctionInput": 1.1}) == "Formatting argument 1.1."
    assert run(text, {"FunctionInput": True}) == "Formatting argument true."
    assert run(text, {"FunctionInput": {"Arg1": 1, "Arg2": []}}) == (
        "Formatting argument {Arg1=1, Arg2=[]}."
    )
    assert run(text, {"FunctionInput": ["a", 1, None, {"k": "v"}]}) == (
        "Formatting argument [a, 1, null, {k=v}]."
    )


def test_json_to_string_as_aws_recorded() -> None:
    # AWS-recorded (LocalStack snapshot test_json_manipulation::test_json_to_string)
    text = "States.JsonToString($.FunctionInput)"
    for value, expected in [
        (None, "null"),
        (1, "1"),
        (1.1, "1.1"),
        (True, "true"),
        ("HelloWorld", '"HelloWorld"'),
        ([1, 2, "HelloWorld"], '[1,2,"HelloWorld"]'),
        ({"Arg1": 1, "Arg2": []}, '{"Arg1":1,"Arg2":[]}'),
    ]:
        assert run(text, {"FunctionInput": value}) == expected
    assert run(text, {"FunctionInput": {"é": "ü"}}) == '{"é":"ü"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        (" ", None),
        ("null", None),
        ("-0", 0),
        ("1", 1),
        ("1.1", 1.1),
        ("true", True),
        ('"HelloWorld"', "HelloWorld"),
        ('[1, 2, "HelloWorld"]', [1, 2, "HelloWorld"]),
        ('{"Arg1": 1, "Arg2": []}', {"Arg1": 1, "Arg2": []}),
    ],
)
def test_string_to_json_as_aws_recorded(text: str, expected: Any) -> None:
    # AWS-recorded (LocalStack snapshot test_json_manipulation::test_string_to_json)
    assert same_json(run("States.StringToJson($.s)", {"s": text}), expected)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (-9, 3, -6),
        (1.49, 1.5, 3),
        (1.5, 1.51, 4),
        (-1.49, -1.5, -2),
        (-1.5, -1.51, -3),
        (1.49, 0, 1),
        (1.5, 0, 2),
        (-0.5, 0, 0),
    ],
)
def test_math_add_rounds_each_argument_like_java(
    first: float, second: float, expected: int
) -> None:
    # AWS-recorded (LocalStack snapshot test_math_add, shared cases math_add__*): each argument
    # is rounded half up (Java Math.round) before adding; the sum is an integer.
    result = run("States.MathAdd($.a, $.b)", {"a": first, "b": second})
    assert result == expected
    assert type(result) is int


def test_string_split_with_a_literal_newline() -> None:
    # AWS-recorded (LocalStack snapshot test_generic::test_escape_sequence)
    assert run("States.StringSplit('Hello\nWorld', '\n')") == ["Hello", "World"]


def test_json_merge_with_nested_string_to_json() -> None:
    # LocalStack AWS-validated template json_merge_escaped_argument: unescaped braces are fine
    # outside a format string.
    text = (
        'States.JsonMerge(States.StringToJson(\'{"constant_in_literal": "false"}\'), '
        "$$.Execution.Input.input_field, false)"
    )
    context = {"Execution": {"Input": {"input_field": {"constant_input_field": "constant_value"}}}}
    assert run(text, {}, context) == {
        "constant_in_literal": "false",
        "constant_input_field": "constant_value",
    }


def test_format_with_template_path_and_context() -> None:
    # AWS-recorded (shared case variables/…MAP_STATE_REFERENCE_IN_ITEMS_PATH)
    text = "States.Format($.AnswerTemplate, $$.Map.Item.Value)"
    context = {"Map": {"Item": {"Value": "Pikachu", "Index": 1}}}
    assert run(text, {"AnswerTemplate": "It's {}!"}, context) == "It's Pikachu!"


def test_variables_in_arguments() -> None:
    variables = {"user": {"name": "Ada"}, "n": 2}
    assert run("States.Format('{}:{}', $user.name, $n)", {}, {}, variables) == "Ada:2"
    assert failure("States.Array($missing)", {"a": 1}, {}, variables) == (
        "The JsonPath argument for the field '$missing' could not be found in the input '{\"a\":1}'"
    )


# --------------------------------------------------------------------------- shared AWS cases


def _intrinsic_cases() -> list[Any]:
    if not CASES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{CASES} is absent"))]
    params = []
    for file in sorted((CASES / "intrinsics").glob("*.json")):
        case = json.loads(file.read_text())
        state = case["definition"]["States"][case["definition"]["StartAt"]]
        for key, text in state.get("Parameters", {}).items():
            if key.endswith(".$") and is_intrinsic(text):
                expected = case["expected"]["output"][key[:-2]]
                params.append(pytest.param((text, case["input"], expected), id=file.stem))
    return params


@pytest.mark.parametrize("case", _intrinsic_cases())
def test_shared_aws_case(case: tuple[str, Any, Any]) -> None:
    text, data, expected = case
    context = {
        "Execution": {"Id": "arn:aws:states:us-east-1:1:execution:sm:x", "Input": data},
        "State": {"Name": "State_0", "EnteredTime": "2024-01-01T00:00:00Z"},
        "StateMachine": {"Id": "arn:aws:states:us-east-1:1:stateMachine:sm", "Name": "sm"},
    }
    assert same_json(run(text, data, context), expected)


def _jsonata_cases() -> list[Any]:
    if not CASES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{CASES} is absent"))]
    params = []
    for file in sorted((CASES / "jsonata").glob("*.json")):
        case = json.loads(file.read_text())
        state = case["definition"]["States"][case["definition"]["StartAt"]]
        output = state.get("Output")
        if not (isinstance(output, str) and output.startswith("{%")):
            continue
        if any(f"${name}(" in output for name in JSONATA_FUNCTIONS):
            expected = case["expected"]["output"]
            params.append(
                pytest.param((output[2:-2].strip(), case["input"], expected), id=file.stem)
            )
    return params


@pytest.mark.parametrize("case", _jsonata_cases())
def test_shared_aws_jsonata_case(case: tuple[str, Any, Any]) -> None:
    source, data, expected = case
    expression = jsonata.Jsonata(source)
    for name, function in JSONATA_FUNCTIONS.items():
        expression.register_lambda(name, function)
    result = expression.evaluate(data, {"states": {"input": data}})
    assert json.loads(json.dumps(result)) == expected


# --------------------------------------------------------------------------- JSONata functions


def register(source: str) -> Any:
    """How the engine hooks the AWS additions into jsonata-python: one register_lambda each."""
    expression = jsonata.Jsonata(source)
    for name, function in JSONATA_FUNCTIONS.items():
        expression.register_lambda(name, function)  # the name has no "$"
    return expression


def test_jsonata_functions_register_and_run() -> None:
    assert set(JSONATA_FUNCTIONS) == {"partition", "range", "hash", "random", "uuid", "parse"}
    result = register(
        "{'p': $partition([1,2,3,4,5,6,7,8,9], 3), 'r': $range(0, 10, 2), "
        "'h': $hash('input data', 'SHA-256'), 'u': $uuid(), 'j': $parse('{\"a\": [1, true]}'), "
        "'s': [$random(5), $random(5)], 'x': $random()}"
    ).evaluate(None)
    assert result["p"] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert result["r"] == [0, 2, 4, 6, 8, 10]  # the end is included
    assert result["h"] == "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"
    assert UUID4.match(result["u"])
    assert result["j"] == {"a": [1, True]}
    assert result["s"][0] == result["s"][1]  # a seed gives a repeatable number
    assert 0 <= result["s"][0] < 1
    assert 0 <= result["x"] < 1


def test_jsonata_function_errors_are_plain_messages() -> None:
    with pytest.raises(JsonataFunctionError, match=r"^\$partition: the chunk size"):
        register("$partition([1, 2], 0)").evaluate(None)
    with pytest.raises(JsonataFunctionError, match=r"^\$hash: the algorithm"):
        register("$hash('x', 'SHA-224')").evaluate(None)
    with pytest.raises(JsonataFunctionError, match=r"^\$parse: the string \"nope\""):
        register("$parse('nope')").evaluate(None)
    with pytest.raises(JsonataFunctionError, match=r"^\$range takes 3 arguments"):
        register("$range(1, 2)").evaluate(None)
    with pytest.raises(JsonataFunctionError, match=r"at most 1000"):
        register("$range(1, 2000, 1)").evaluate(None)


def test_jsonata_functions_as_plain_callables() -> None:
    assert JSONATA_FUNCTIONS["partition"]([1, 2, 3], 2) == [[1, 2], [3]]
    assert JSONATA_FUNCTIONS["range"](5, 1, -2) == [5, 3, 1]
    assert JSONATA_FUNCTIONS["parse"]("-0") == 0
    assert JSONATA_FUNCTIONS["hash"]("a", "MD5") == hashlib.md5(b"a").hexdigest()


# --------------------------------------------------------------------------- behaviour details


def test_literals() -> None:
    assert same_json(
        run("States.Array(1, -2, 3.5, -0.25, 1e3, true, false, null, '', 'a b')"),
        [1, -2, 3.5, -0.25, 1000.0, True, False, None, "", "a b"],
    )
    assert run("States.Array( 1 ,\t'x' )") == [1, "x"]


def test_path_arguments_end_at_top_level_commas_only() -> None:
    data = {"a,b": 1, "c": [2], "d": [{"x": ")"}, {"x": 1}]}
    assert run("States.Array($['a,b'], $.c[0], $.d[?(@.x == ')')])", data) == [
        1,
        2,
        [{"x": ")"}],
    ]
    assert run("States.Array($)", {"k": 1}) == [{"k": 1}]


def test_context_path() -> None:
    context = {"Execution": {"Id": "arn:x:y"}}
    assert run("States.StringSplit($$.Execution.Id, ':')", {}, context) == ["arn", "x", "y"]
    assert compile_intrinsic("States.Array($$.Execution.Id)").uses_context
    assert not compile_intrinsic("States.Array($.a)").uses_context


def test_string_split_drops_empty_parts() -> None:
    # AWS-recorded (shared case string_split_context_object__00): runs of delimiters give no
    # empty strings
    assert run("States.StringSplit(',,a,,b,,', ',')") == ["a", "b"]
    assert run("States.StringSplit('...', '.')") == []
    assert run("States.StringSplit('abc', '')") == ["abc"]


def test_array_contains_and_unique_use_json_equality() -> None:
    data = {"a": [1, True, {"x": 1, "y": [None]}, "1"]}
    assert run("States.ArrayContains($.a, $.v)", {**data, "v": {"y": [None], "x": 1}}) is True
    assert run("States.ArrayContains($.a, $.v)", {**data, "v": 1.0}) is True
    assert run("States.ArrayContains($.a, $.v)", {**data, "v": False}) is False
    assert run("States.ArrayContains($.a, $.v)", {**data, "v": None}) is False
    values = [None, None, True, True, 1, 1, 1.1, 0, "1", [], [], [None], {"a": 1}, {"a": 1}]
    assert run("States.ArrayUnique($.a)", {"a": values}) == [
        None,
        True,
        1,
        1.1,
        0,
        "1",
        [],
        [None],
        {"a": 1},
    ]


def test_array_range_edges() -> None:
    assert run("States.ArrayRange(0, 10, 3)") == [0, 3, 6, 9]
    assert run("States.ArrayRange(5, 1, 1)") == []
    assert run("States.ArrayRange(10, 1, -4)") == [10, 6, 2]
    assert len(run("States.ArrayRange(1, 1000, 1)")) == 1000
    assert run("States.ArrayRange(1.0, 3, 1)") == [1, 2, 3]


def test_base64_decode_accepts_missing_padding() -> None:
    assert run("States.Base64Decode('RGF0YQ')") == "Data"
    assert run("States.Base64Decode('')") == ""
    assert run("States.Base64Encode($.s)", {"s": "é"}) == base64.b64encode("é".encode()).decode()


def test_limits_are_inclusive() -> None:
    ok = "a" * 10_000
    assert len(run("States.Base64Encode($.s)", {"s": ok})) == 13_336
    assert run("States.Hash($.s, 'MD5')", {"s": ok}) == hashlib.md5(ok.encode()).hexdigest()
    assert run("States.Base64Decode($.s)", {"s": "A" * 10_000})


def test_compiled_object() -> None:
    compiled = compile_intrinsic("States.Format('{}', $.a)")
    assert isinstance(compiled, Intrinsic)
    assert compiled.name == "States.Format"
    assert compiled.text == "States.Format('{}', $.a)"
    assert compile_intrinsic("States.Format('{}', $.a)") is compiled  # cached
    assert len(FUNCTION_NAMES) == 18


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.Format('a')", True),
        ("States.UUID()", True),
        ("States.Array ($.a)", True),
        ("$.a", False),
        ("States.Format", False),
        ("States.Format('a'", False),
        ("states.Format('a')", False),
        (" States.UUID()", False),
    ],
)
def test_is_intrinsic(text: str, expected: bool) -> None:
    assert is_intrinsic(text) is expected


# --------------------------------------------------------------------------- run-time errors


def test_missing_path_argument_cause_uses_aws_wording() -> None:
    # AWS wording (quoted from real executions): the whole expression, then the argument and
    # the state input as compact JSON.
    data = {"other": 1}
    expected = (
        "The JsonPath argument for the field '$.nope' could not be found in the input "
        "'{\"other\":1}'"
    )
    assert failure("States.Format('{}', $.nope)", data) == expected
    assert failure("States.Format('{}', States.Format('{}', $.nope))", data) == expected
    assert failure("States.ArrayLength($.nope)", data) == expected
    assert failure("States.JsonMerge($.nope, $.other, false)", data) == expected
    assert failure("States.Format('{}', $.items[5])", {"items": [1, 2]}).startswith(
        "The JsonPath argument for the field '$.items[5]' could not be found"
    )
    # A $$ argument is named with one $ dropped, against the state input.
    assert failure("States.Format('{}', $$.Nope.Deep)", data, {"State": {}}) == (
        "The JsonPath argument for the field '$.Nope.Deep' could not be found in the input "
        "'{\"other\":1}'"
    )


def test_runtime_failure_cause_is_only_the_specific_part() -> None:
    with pytest.raises(RuntimeFailure) as info:
        run("States.ArrayGetItem($.a, 3)", {"a": [1, 2, 3]})
    assert info.value.cause == (
        "The function 'States.ArrayGetItem($.a, 3)' had the following error: "
        "States.ArrayGetItem: the index 3 is out of bounds for an array of length 3"
    )


@pytest.mark.parametrize(
    ("text", "data", "message"),
    [
        ("States.Format($.t, 1)", {"t": 5}, "States.Format: the format string (first argument)"),
        ("States.Format($.t, 1)", {"t": "{} {}"}, "placeholders '{}' but 1 value was given"),
        ("States.StringToJson($.s)", {"s": 1}, "the argument must be a string"),
        ("States.StringToJson($.s)", {"s": "{"}, 'the string "{" is not valid JSON'),
        ("States.StringToJson($.s)", {"s": "NaN"}, "is not valid JSON"),
        ("States.ArrayPartition($.a, 2)", {"a": "x"}, "first argument must be an array"),
        ("States.ArrayPartition($.a, 0)", {"a": [1]}, "must be greater than 0, but was 0"),
        ("States.ArrayPartition($.a, 1.5)", {"a": [1]}, "must be an integer"),
        ("States.ArrayPartition($.a, true)", {"a": [1]}, "must be an integer, but was boolean"),
        ("States.ArrayContains($.a, 1)", {"a": {}}, "first argument must be an array"),
        ("States.ArrayRange(1, 2, 0)", None, "the step (third argument) must not be 0"),
        ("States.ArrayRange(1, 1001, 1)", None, "1001 items, but at most 1000"),
        ("States.ArrayRange(1.5, 3, 1)", None, "the start (first argument) must be an integer"),
        ("States.ArrayGetItem($.a, -1)", {"a": [1]}, "index -1 is out of bounds"),
        ("States.ArrayGetItem($.a, '0')", {"a": [1]}, "must be an integer, but was string"),
        ("States.ArrayLength($.a)", {"a": "abc"}, "the argument must be an array"),
        ("States.ArrayUnique($.a)", {"a": 1}, "the argument must be an array"),
        ("States.Base64Encode($.s)", {"s": 1}, "the input string must be a string"),
        ("States.Base64Encode($.s)", {"s": "a" * 10_001}, "10001 characters, but at most 10000"),
        ("States.Base64Decode($.s)", {"s": "not base64!"}, "is not valid Base64"),
        ("States.Base64Decode($.s)", {"s": "RGF0\nYQ=="}, "is not valid Base64"),
        ("States.Base64Decode($.s)", {"s": "QQ="}, "is not valid Base64"),
        ("States.Hash($.s, 'SHA256')", {"s": "x"}, "must be one of MD5, SHA-1, SHA-256"),
        ("States.Hash($.s, 'sha-1')", {"s": "x"}, 'but was string "sha-1"'),
        ("States.Hash($.s, 'MD5')", {"s": 12}, "input data (first argument) must be a string"),
        ("States.JsonMerge($.a, $.b, false)", {"a": [], "b": {}}, "first argument must be an"),
        ("States.JsonMerge($.a, $.b, false)", {"a": {}, "b": 1}, "second argument must be an"),
        ("States.JsonMerge($.a, $.a, true)", {"a": {}}, "deep merging is not supported"),
        ("States.JsonMerge($.a, $.a, 'no')", {"a": {}}, "must be a boolean"),
        ("States.MathRandom(5, 5)", None, "the start (5) must be less than the end (5)"),
        ("States.MathRandom('1', 5)", None, "the start (first argument) must be a number"),
        ("States.MathAdd($.a, 1)", {"a": "1"}, "the first argument must be a number"),
        ("States.MathAdd(1, $.a)", {"a": None}, "the second argument must be a number"),
        ("States.StringSplit($.s, ',')", {"s": 7}, "the first argument must be a string"),
        ("States.StringSplit('a', $.d)", {"d": 7}, "the delimiters (second argument)"),
    ],
)
def test_argument_errors(text: str, data: Any, message: str) -> None:
    detail = failure(text, data)
    name = text.split("(", 1)[0]
    assert detail.startswith(f"{name}: "), detail
    assert message in detail, detail


def test_error_in_nested_call_names_the_inner_function() -> None:
    detail = failure("States.Format('{}', States.ArrayLength($.a))", {"a": 1})
    assert detail.startswith("States.ArrayLength: the argument must be an array, but was integer")


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("States.Formt(1)", "unknown intrinsic function States.Formt; did you mean States.Format?"),
        ("States.format('a')", "names are case-sensitive: did you mean States.Format?"),
        ("States.Nonsense()", "the functions are States.Array,"),
        ("States.()", "a function name must follow 'States.'"),
        ("States.Array", "expected '(' after the function name States.Array"),
        ("$.a", "must start with 'States.'"),
        ("States.Array(1", "the argument list of States.Array is not closed: missing ')'"),
        ("States.Array(1))", "unexpected text after the closing parenthesis"),
        ("States.Array('abc)", "unterminated string literal"),
        ("States.Array('abc", "unterminated string literal"),
        ("States.Array('a\\nb')", "invalid escape sequence '\\n'"),
        ("States.Array('a\\')", "unterminated string literal"),
        ("States.Array(1 2)", "expected ',' or ')' in the call to States.Array, found '2'"),
        ("States.Array(1,)", "missing argument in the call to States.Array"),
        ("States.Array(,)", "missing argument in the call to States.Array"),
        ("States.Array(12ab)", "invalid literal '12ab'"),
        ("States.Array(1.2.3)", "invalid literal '1.2.3'"),
        ("States.Array(-)", "a '-' must be followed by a number"),
        ("States.Array(truex)", "unexpected 'truex'"),
        ('States.Array("a")', "an argument is a 'string' in single quotes"),
        ("States.Array($.a[0)", "missing ']' before ')' in the path argument"),
        ("States.Array($.a[0)", "at character 19"),
        ("States.Array($.a[0, 1)", "missing ']'"),
        ("States.Array($['a)", "unterminated quoted name in the path argument"),
        ("States.Array($.a..)", "invalid path argument '$.a..'"),
        ("States.MathAdd(1)", "States.MathAdd takes exactly 2 arguments, but 1 was given"),
        ("States.MathAdd(1, 2, 3)", "takes exactly 2 arguments, but 3 were given"),
        ("States.UUID(1)", "States.UUID takes no arguments, but 1 was given"),
        ("States.MathRandom(1)", "States.MathRandom takes 2 or 3 arguments"),
        ("States.Format()", "States.Format takes at least 1 argument, but 0 were given"),
        ("States.JsonMerge($.a, $.b)", "takes exactly 3 arguments"),
        ("States.Format('{}')", "States.Format: the format string has 1 placeholder '{}' but 0"),
        ("States.Format('a', 1)", "has 0 placeholders '{}' but 1 value was given"),
        ("States.Format('\\{}', 1)", "has 0 placeholders"),
        ("States.Format(1, 2)", "must be a string, not 1"),
        ("States.Format(States.UUID())", "must be a string or a path"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert message in syntax_error(text)


def test_syntax_error_message_names_the_text_and_position() -> None:
    with pytest.raises(IntrinsicSyntaxError) as info:
        compile_intrinsic("States.Array(1 2)")
    assert info.value.text == "States.Array(1 2)"
    assert info.value.position == 16
    assert str(info.value).startswith("invalid intrinsic function 'States.Array(1 2)': ")


def test_deep_nesting_is_rejected_cleanly() -> None:
    text = "States.Array(" * 100 + ")" * 100
    assert "nested more than" in syntax_error(text)


# --------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


@given(st.text(max_size=300))
def test_base64_round_trip(text: str) -> None:
    assert run("States.Base64Decode(States.Base64Encode($.s))", {"s": text}) == text


@given(JSON)
def test_json_to_string_round_trip(value: Any) -> None:
    assert same_json(run("States.StringToJson(States.JsonToString($.v))", {"v": value}), value)


@given(st.lists(JSON, max_size=30), st.integers(min_value=1, max_value=10))
def test_array_partition_concatenates_back(items: list[Any], size: int) -> None:
    chunks = run("States.ArrayPartition($.a, $.n)", {"a": items, "n": size})
    assert [item for chunk in chunks for item in chunk] == items
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert not chunks or 1 <= len(chunks[-1]) <= size


@given(st.lists(JSON, max_size=20))
def test_array_unique_is_idempotent_and_keeps_every_value(items: list[Any]) -> None:
    unique = run("States.ArrayUnique($.a)", {"a": items})
    assert run("States.ArrayUnique($.a)", {"a": unique}) == unique
    assert run("States.ArrayLength($.a)", {"a": unique}) <= len(items)
    for item in items:
        assert run("States.ArrayContains($.u, $.v)", {"u": unique, "v": item}) is True


@given(st.text(max_size=100))
@settings(max_examples=200)
def test_any_text_survives_as_an_escaped_literal(text: str) -> None:
    literal = escape(text)
    assert run(f"States.Array('{literal}')") == [text]
    assert run(f"States.Format('{literal}')") == text  # escaped braces are no placeholders
    assert run(f"States.Format('{literal}{{}}', 1)") == text + "1"


@given(st.text(max_size=60), st.text(min_size=1, max_size=4))
def test_string_split_parts(text: str, delimiters: str) -> None:
    parts = run("States.StringSplit($.s, $.d)", {"s": text, "d": delimiters})
    assert all(part and not set(part) & set(delimiters) for part in parts)
    assert "".join(parts) == "".join(c for c in text if c not in delimiters)


@given(
    st.integers(min_value=-50, max_value=50),
    st.integers(min_value=-50, max_value=50),
    st.integers(min_value=-7, max_value=7).filter(bool),
)
def test_array_range_matches_python_range(start: int, end: int, step: int) -> None:
    expected = list(range(start, end + (1 if step > 0 else -1), step))
    assert run("States.ArrayRange($.a, $.b, $.c)", {"a": start, "b": end, "c": step}) == expected


@given(st.floats(min_value=-1e6, max_value=1e6), st.integers(-1000, 1000))
def test_math_add_is_integer(first: float, second: int) -> None:
    result = run("States.MathAdd($.a, $.b)", {"a": first, "b": second})
    assert type(result) is int
    assert abs(result - (first + second)) <= 0.5
