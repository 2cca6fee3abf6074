"""The server-side graph: every kind of edge, nested Map/Parallel, loops, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from statefleet.statemachine.machine import StateMachine
from statefleet.ui.graph import Highlight, build_graph, path_of, render_svg, rule_label

LOOP = {
    "StartAt": "Poll",
    "States": {
        "Poll": {"Type": "Task", "Resource": "x:poll", "Next": "Ready?"},
        "Ready?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.ready", "BooleanEquals": True, "Next": "Fan"},
                {
                    "And": [
                        {"Variable": "$.n", "NumericGreaterThan": 1},
                        {"Variable": "$.n", "NumericLessThan": 9},
                    ],
                    "Next": "Wait",
                },
            ],
            "Default": "Gave up",
        },
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Poll"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "B1",
                    "States": {
                        "B1": {"Type": "Pass", "Next": "B2"},
                        "B2": {"Type": "Pass", "End": True},
                    },
                },
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gave up"}],
            "Next": "<script>alert(1)</script>",
        },
        "<script>alert(1)</script>": {"Type": "Succeed"},
        "Gave up": {"Type": "Fail", "Error": "GaveUp"},
    },
}


def graph() -> dict:
    return build_graph(StateMachine.from_definition(LOOP).machine).as_dict()


def test_edges_of_every_kind_and_loops() -> None:
    data = graph()
    edges = {(e["source"], e["target"], e["kind"]) for e in data["edges"]}
    assert edges == {
        ("Poll", "Ready?", "next"),
        ("Ready?", "Fan", "choice"),
        ("Ready?", "Wait", "choice"),
        ("Ready?", "Gave up", "default"),
        ("Wait", "Poll", "next"),
        ("Fan", "<script>alert(1)</script>", "next"),
        ("Fan", "Gave up", "catch"),
    }
    labels = {e["target"]: e["label"] for e in data["edges"] if e["source"] == "Ready?"}
    assert labels == {"Fan": "$.ready == true", "Wait": "And(2)", "Gave up": "default"}
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["Poll"]["y"] < nodes["Ready?"]["y"] < nodes["Fan"]["y"]
    assert nodes["Wait"]["y"] > nodes["Ready?"]["y"]  # the loop back to Poll goes up
    fan = nodes["Fan"]
    assert [c["start"] for c in fan["children"]] == ["A", "B1"]
    for child in fan["children"]:  # branches drawn inside the Parallel state
        for inner in child["nodes"]:
            assert fan["x"] <= inner["x"] and inner["x"] + inner["w"] <= fan["x"] + fan["w"]
            assert fan["y"] < inner["y"] and inner["y"] + inner["h"] <= fan["y"] + fan["h"]


def test_svg_is_well_formed_escaped_and_highlighted() -> None:
    built = build_graph(StateMachine.from_definition(LOOP).machine)
    svg = render_svg(
        built,
        Highlight(
            path=path_of([{"state": "Poll"}, {"state": "Ready?"}, {"state": "Fan"}]),
            current="Fan",
            current_status="RUNNING",
        ),
    )
    root = ET.fromstring(svg)  # well-formed XML
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    ns = "{http://www.w3.org/2000/svg}"
    visited = [
        g.get("data-state")
        for g in root.iter(f"{ns}g")
        if "visited" in (g.get("class") or "").split()
    ]
    assert sorted(visited) == ["Fan", "Poll", "Ready?"]
    taken = {
        (g.get("data-source"), g.get("data-target"))
        for g in root.iter(f"{ns}g")
        if {"edge", "taken"} <= set((g.get("class") or "").split())
    }
    assert taken == {("Poll", "Ready?"), ("Ready?", "Fan")}
    assert re.search(r'class="node type-parallel container visited current status-running"', svg)


def test_counts_become_badges_and_links() -> None:
    built = build_graph(StateMachine.from_definition(LOOP).machine)
    svg = render_svg(
        built,
        Highlight(
            counts={"Wait": {"active": 12_345, "failed": 0}, "Gave up": {"active": 0, "failed": 3}},
            link="/executions?state={state}",
        ),
    )
    assert '<g class="badge badge-active"><title>12345 now</title>' in svg
    assert ">12k</text>" in svg
    assert '<g class="badge badge-failed"><title>3 failed here</title>' in svg
    assert 'href="/executions?state=Gave%20up"' in svg


def test_rule_labels() -> None:
    assert rule_label({"Variable": "$.x", "StringEquals": "a", "Next": "N"}) == '$.x == "a"'
    assert rule_label({"Variable": "$.x", "NumericLessThanEqualsPath": "$.y"}) == "$.x <= $.y"
    assert rule_label({"Not": {"Variable": "$.x", "IsNull": True}}) == "Not($.x IsNull true)"
    assert rule_label({"Condition": "{% $states.input.n > 1 %}"}) == "{% $states.input.n > 1 %}"
