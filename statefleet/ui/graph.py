"""A state machine drawn as inline SVG, laid out on the server.

The layout is layered (Sugiyama-lite): a depth-first walk from ``StartAt`` finds the back
edges (loops), every other edge points down, each state goes to the layer after its
deepest predecessor, a few barycentre sweeps order each layer, and the layers are
centred. Map and Parallel states are containers: their item processor or branches are
laid out the same way, recursively, and drawn inside them (branches side by side).

Edges: ``next``, ``choice`` (labelled with the rule), ``default``, ``catch`` (labelled
with the errors). A state is labelled with its name, its type, and two counts if given:
executions in it now, and executions that ended unsuccessfully there. The path an
execution took is highlighted: visited states, the edges between consecutive ones, the
state it is in now or failed in.

Every name that comes from a definition is escaped: the SVG is safe to inline.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from statefleet.statemachine.definition import Machine
from statefleet.statemachine.states import State

__all__ = ["Graph", "Highlight", "build_graph", "render_svg"]

NODE_H = 48.0
CHAR_W = 7.4
PAD_X = 18.0
MIN_W = 118.0
GAP_X = 30.0
GAP_Y = 56.0
HEADER_H = 30.0
INNER_PAD = 16.0
MARGIN = 24.0
START_R = 7.0


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch
    label: str = ""
    back: bool = False
    #: cubic segments, each (x1, y1, c1x, c1y, c2x, c2y, x2, y2), joined end to start
    segments: list[tuple[float, ...]] = field(default_factory=list)
    label_at: tuple[float, float] | None = None


@dataclass
class Node:
    name: str
    type: str
    x: float = 0.0
    y: float = 0.0
    w: float = MIN_W
    h: float = NODE_H
    end: bool = False
    layer: int = 0
    children: list[Layout] = field(default_factory=list)  # Map: one, Parallel: n
    comment: str | None = None


@dataclass
class Layout:
    """A (sub-)machine laid out in its own coordinates (origin top-left)."""

    start: str
    nodes: dict[str, Node]
    edges: list[Edge]
    w: float = 0.0
    h: float = 0.0


@dataclass
class Graph:
    """A laid-out machine: the top layout and its size."""

    layout: Layout
    w: float
    h: float

    def as_dict(self) -> dict[str, Any]:
        def nodes(layout: Layout, dx: float, dy: float) -> list[dict[str, Any]]:
            out = []
            for node in layout.nodes.values():
                item: dict[str, Any] = {
                    "name": node.name,
                    "type": node.type,
                    "x": round(node.x + dx, 1),
                    "y": round(node.y + dy, 1),
                    "w": round(node.w, 1),
                    "h": round(node.h, 1),
                    "end": node.end,
                }
                if node.children:
                    item["children"] = [
                        {
                            "start": child.start,
                            "nodes": nodes(child, *offset),
                            "edges": edges(child),
                        }
                        for child, offset in zip(
                            node.children, _child_offsets(node, dx, dy), strict=True
                        )
                    ]
                out.append(item)
            return out

        def edges(layout: Layout) -> list[dict[str, Any]]:
            return [
                {"source": e.source, "target": e.target, "kind": e.kind, "label": e.label}
                for e in layout.edges
            ]

        return {
            "start": self.layout.start,
            "width": round(self.w, 1),
            "height": round(self.h, 1),
            "nodes": nodes(self.layout, MARGIN, MARGIN),
            "edges": edges(self.layout),
        }


@dataclass
class Highlight:
    """What to mark on a graph: counts per state, and an execution's path."""

    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    path: Sequence[str] = ()
    current: str | None = None
    current_status: str | None = None
    failed_states: frozenset[str] = frozenset()
    link: str | None = None  # URL template with {state}: states become links


# ---------------------------------------------------------------------- edges of a state


def _short(value: Any, limit: int = 26) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rule_label(rule: Mapping[str, Any]) -> str:
    """A short text for a Choice rule: ``$.total > 1000``, ``And(2)``, a JSONata condition."""
    if "Condition" in rule:
        return _short(rule["Condition"])
    for combinator in ("And", "Or"):
        if combinator in rule:
            return f"{combinator}({len(rule[combinator])})"
    if "Not" in rule:
        return "Not(" + _short(rule_label(rule["Not"]), 20) + ")"
    variable = rule.get("Variable", "")
    ops = {
        "Equals": "==",
        "LessThan": "<",
        "GreaterThan": ">",
        "LessThanEquals": "<=",
        "GreaterThanEquals": ">=",
    }
    for key, value in rule.items():
        if key in ("Variable", "Next", "Assign", "Comment", "Output"):
            continue
        if key.startswith("Is"):
            return _short(f"{variable} {key} {json.dumps(value)}")
        if key == "StringMatches":
            return _short(f"{variable} ~ {json.dumps(value)}")
        for suffix, symbol in sorted(ops.items(), key=lambda item: -len(item[0])):
            if key.endswith(suffix) or key.endswith(suffix + "Path"):
                shown = value if key.endswith("Path") else json.dumps(value, ensure_ascii=False)
                return _short(f"{variable} {symbol} {shown}")
    return _short(variable or "rule")


def state_edges(state: State) -> list[Edge]:
    edges: list[Edge] = []
    spec = state.spec
    if state.type_name == "Choice":
        for rule in spec.get("Choices", ()):
            if isinstance(rule, Mapping) and rule.get("Next"):
                edges.append(Edge(state.name, rule["Next"], "choice", rule_label(rule)))
        if spec.get("Default"):
            edges.append(Edge(state.name, spec["Default"], "default", "default"))
    elif state.next:
        edges.append(Edge(state.name, state.next, "next"))
    for catcher in state.catchers:
        errors = ", ".join(catcher.error_equals) or "catch"
        edges.append(Edge(state.name, catcher.next, "catch", _short(errors, 30)))
    timeout_state = getattr(state, "timeout_state", None)  # a Message state's TimeoutPath
    if isinstance(timeout_state, str) and timeout_state:
        edges.append(Edge(state.name, timeout_state, "catch", "timeout"))
    return edges


def _nested(state: State) -> list[Machine]:
    branches = getattr(state, "branches", None)
    if isinstance(branches, list):
        return branches
    processor = getattr(state, "processor", None)
    return [processor] if isinstance(processor, Machine) else []


# ---------------------------------------------------------------------- layout


def _layers(machine: Machine, edges: list[Edge]) -> list[list[str]]:
    names = list(machine.states)
    out: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        if edge.target in out and edge.source in out:
            out[edge.source].append(edge.target)
    # depth-first from the start (then any state not reached) to find back edges
    order: list[str] = []
    state: dict[str, int] = {}  # 1 on stack, 2 done
    back: set[tuple[str, str]] = set()

    def visit(root: str) -> None:
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        order.append(root)
        while stack:
            node, index = stack[-1]
            targets = out[node]
            if index < len(targets):
                stack[-1] = (node, index + 1)
                target = targets[index]
                if state.get(target) == 1:
                    back.add((node, target))
                elif target not in state:
                    state[target] = 1
                    order.append(target)
                    stack.append((target, 0))
            else:
                state[node] = 2
                stack.pop()

    roots = [machine.start_at] if machine.start_at in out else []
    for root in [*roots, *names]:
        if root not in state:
            visit(root)
    for edge in edges:
        edge.back = (edge.source, edge.target) in back or edge.source == edge.target
    # longest path layering over the forward edges, in topological order
    indegree = {n: 0 for n in names}
    for edge in edges:
        if not edge.back and edge.target in indegree and edge.source in indegree:
            indegree[edge.target] += 1
    level = {n: 0 for n in names}
    ready = [n for n in order if indegree[n] == 0]
    seen: set[str] = set()
    while ready:
        node = ready.pop(0)
        seen.add(node)
        for edge in edges:
            if edge.source != node or edge.back or edge.target not in level:
                continue
            level[edge.target] = max(level[edge.target], level[node] + 1)
            indegree[edge.target] -= 1
            if indegree[edge.target] == 0:
                ready.append(edge.target)
    if machine.start_at in level:
        level[machine.start_at] = 0
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=0) + 1)]
    for node in order:
        layers[level[node]].append(node)
    return [layer for layer in layers if layer]


def _order(layers: list[list[str]], edges: list[Edge]) -> None:
    """Barycentre sweeps (down then up) to reduce crossings."""
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for edge in edges:
        if edge.back:
            continue
        preds.setdefault(edge.target, []).append(edge.source)
        succs.setdefault(edge.source, []).append(edge.target)
    for _ in range(3):
        for neighbours, sequence in ((preds, layers[1:]), (succs, list(reversed(layers[:-1])))):
            position = {n: i for layer in layers for i, n in enumerate(layer)}
            for layer in sequence:
                keys = {}
                for index, node in enumerate(layer):
                    around = [position[n] for n in neighbours.get(node, ()) if n in position]
                    keys[node] = sum(around) / len(around) if around else float(index)
                layer.sort(key=lambda n: keys[n])
                position.update({n: i for i, n in enumerate(layer)})


def layout_machine(machine: Machine) -> Layout:
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    for state in machine.states.values():
        children = [layout_machine(m) for m in _nested(state)]
        node = Node(
            name=state.name,
            type=state.type_name,
            end=state.end or state.type_name in ("Succeed", "Fail"),
            children=children,
            comment=state.spec.get("Comment") if isinstance(state.spec, Mapping) else None,
        )
        label_w = len(state.name) * CHAR_W + 2 * PAD_X + 44
        if children:
            inner_w = sum(c.w for c in children) + GAP_X * (len(children) - 1)
            node.w = max(MIN_W, label_w, inner_w + 2 * INNER_PAD)
            node.h = HEADER_H + max(c.h for c in children) + INNER_PAD
        else:
            node.w = max(MIN_W, label_w)
        nodes[state.name] = node
        edges.extend(e for e in state_edges(state) if e.target in machine.states)
    layers = _layers(machine, edges)
    _order(layers, edges)
    width = max(
        (sum(nodes[n].w for n in layer) + GAP_X * (len(layer) - 1) for layer in layers),
        default=MIN_W,
    )
    y = START_R * 2 + 22.0  # room for the start marker
    for index, layer in enumerate(layers):
        for name in layer:
            nodes[name].layer = index
        row_w = sum(nodes[n].w for n in layer) + GAP_X * (len(layer) - 1)
        row_h = max(nodes[n].h for n in layer)
        x = (width - row_w) / 2
        for name in layer:
            node = nodes[name]
            node.x = x
            node.y = y + (row_h - node.h) / 2
            x += node.w + GAP_X
        y += row_h + GAP_Y
    height = y - GAP_Y + 8
    layout = Layout(start=machine.start_at, nodes=nodes, edges=edges, w=width, h=height)
    _route(layout)
    _fit(layout)
    return layout


def _fit(layout: Layout) -> None:
    """Shift everything right if an edge went left of 0, and widen to the rightmost point."""
    xs = [n.x for n in layout.nodes.values()] + [
        seg[i] for e in layout.edges for seg in e.segments for i in range(0, 8, 2)
    ]
    right = [n.x + n.w for n in layout.nodes.values()] + [
        seg[i] for e in layout.edges for seg in e.segments for i in range(0, 8, 2)
    ]
    for e in layout.edges:
        if e.label and e.label_at is not None:
            w = _text_w(e.label) + 8
            left_x = e.label_at[0] if e.back else e.label_at[0] - w / 2
            xs.append(left_x)
            right.append(left_x + w)
    shift = max(0.0, -min(xs, default=0.0) + 6)
    if shift:
        for node in layout.nodes.values():
            node.x += shift
        for edge in layout.edges:
            edge.segments = [
                tuple(v + (shift if i % 2 == 0 else 0) for i, v in enumerate(seg))
                for seg in edge.segments
            ]
            if edge.label_at is not None:
                edge.label_at = (edge.label_at[0] + shift, edge.label_at[1])
    layout.w = max(layout.w, max(right, default=0.0) + shift + 6)


def _route(layout: Layout) -> None:
    """The path of each edge: out of the bottom of the source (spread when it has several
    forward edges), into the top of the target; an edge that skips layers goes round the
    states in between; loops go round the right side."""
    nodes = layout.nodes
    outgoing: dict[str, list[Edge]] = {}
    incoming: dict[str, list[Edge]] = {}
    for edge in layout.edges:
        if not edge.back:
            outgoing.setdefault(edge.source, []).append(edge)
            incoming.setdefault(edge.target, []).append(edge)
    for group in outgoing.values():
        group.sort(key=lambda e: nodes[e.target].x + nodes[e.target].w / 2)
    for group in incoming.values():
        group.sort(key=lambda e: nodes[e.source].x + nodes[e.source].w / 2)
    loop = 0
    lanes = {"left": 0, "right": 0}
    right_edge = max((n.x + n.w for n in nodes.values()), default=0.0)
    for edge in layout.edges:
        a, b = nodes[edge.source], nodes[edge.target]
        if edge.back:
            loop += 1
            x1, y1 = a.x + a.w, a.y + a.h / 2
            x2, y2 = b.x + b.w, b.y + b.h / 2
            reach = max(x1, x2, right_edge) + 18 + 10 * (loop - 1)
            edge.segments = [(x1, y1, reach, y1, reach, y2, x2 + 4, y2)]
            edge.label_at = (reach + 3, (y1 + y2) / 2)
            continue
        out_group = outgoing[edge.source]
        in_group = incoming[edge.target]
        i, n = out_group.index(edge), len(out_group)
        j, m = in_group.index(edge), len(in_group)
        x1 = a.x + a.w * (i + 1) / (n + 1)
        y1 = a.y + a.h
        x2 = b.x + b.w * (j + 1) / (m + 1)
        y2 = b.y - 4
        between = [
            node
            for node in nodes.values()
            if a.layer < node.layer < b.layer
            and node.x - 10 < max(x1, x2)
            and node.x + node.w + 10 > min(x1, x2)
        ]
        if between:
            top = min(node.y for node in between)
            bottom = max(node.y + node.h for node in between)
            left = min(node.x for node in between) - 16
            right = max(node.x + node.w for node in between) + 16
            side = "left" if abs(left - (x1 + x2) / 2) < abs(right - (x1 + x2) / 2) else "right"
            lanes[side] += 1
            lane = (
                left - 10 * (lanes[side] - 1) if side == "left" else right + 10 * (lanes[side] - 1)
            )
            ya, yb = top - 6, bottom + 6
            bend_a = max(12.0, (ya - y1) / 2)
            bend_b = max(12.0, (y2 - yb) / 2)
            edge.segments = [
                (x1, y1, x1, y1 + bend_a, lane, ya - bend_a, lane, ya),
                (lane, ya, lane, ya, lane, yb, lane, yb),
                (lane, yb, lane, yb + bend_b, x2, y2 - bend_b, x2, y2),
            ]
            # beside the lane, on its outer side: clear of the states and the other labels
            half = (_text_w(edge.label) + 8) / 2 + 3
            edge.label_at = (lane + half if side == "right" else lane - half, (ya + yb) / 2)
            continue
        bend = max(20.0, (y2 - y1) / 2)
        edge.segments = [(x1, y1, x1, y1 + bend, x2, y2 - bend, x2, y2)]
        edge.label_at = (_bezier(edge.segments[0], 0.5, 0), _bezier(edge.segments[0], 0.5, 1))


def _bezier(p: tuple[float, ...], t: float, axis: int) -> float:
    a, b, c, d = p[axis], p[2 + axis], p[4 + axis], p[6 + axis]
    u = 1 - t
    return u * u * u * a + 3 * u * u * t * b + 3 * u * t * t * c + t * t * t * d


def _child_offsets(node: Node, dx: float, dy: float) -> list[tuple[float, float]]:
    inner_w = sum(c.w for c in node.children) + GAP_X * (len(node.children) - 1)
    x = node.x + dx + (node.w - inner_w) / 2
    out = []
    for child in node.children:
        out.append((x, node.y + dy + HEADER_H))
        x += child.w + GAP_X
    return out


def build_graph(machine: Machine) -> Graph:
    layout = layout_machine(machine)
    return Graph(layout=layout, w=layout.w + 2 * MARGIN, h=layout.h + 2 * MARGIN)


# ---------------------------------------------------------------------- SVG


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text_w(text: str, size: float = 11.0) -> float:
    return len(text) * size * 0.62


def _taken(path: Sequence[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in itertools.pairwise(path)}


def render_svg(graph: Graph, highlight: Highlight | None = None, *, title: str = "") -> str:
    """The graph as an ``<svg>`` element (escaped, classes styled by the page's CSS)."""
    hl = highlight or Highlight()
    visited = set(hl.path)
    taken = _taken(list(hl.path))
    parts: list[str] = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {_f(graph.w)} {_f(graph.h)}" width="{_f(graph.w)}" '
        f'height="{_f(graph.h)}" aria-label="{escape(title or "state machine graph")}">',
        "<defs>",
    ]
    for kind in ("next", "choice", "default", "catch", "taken"):
        parts.append(
            f'<marker id="arrow-{kind}" class="arrow arrow-{kind}" viewBox="0 0 10 10" '
            'refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" '
            'orient="auto-start-reverse">'
            '<path d="M0,0 L10,5 L0,10 z"/></marker>'
        )
    parts.append("</defs>")
    labels: list[str] = []
    _render_layout(parts, labels, graph.layout, MARGIN, MARGIN, hl, visited, taken, top=True)
    parts.extend(labels)  # over the states, so that none hides a label
    parts.append("</svg>")
    return "".join(parts)


def _render_layout(
    parts: list[str],
    labels: list[str],
    layout: Layout,
    dx: float,
    dy: float,
    hl: Highlight,
    visited: set[str],
    taken: set[tuple[str, str]],
    *,
    top: bool,
) -> None:
    # start marker
    if layout.start in layout.nodes:
        first = layout.nodes[layout.start]
        cx, cy = dx + first.x + first.w / 2, dy + START_R + 2
        started = "taken" if top and layout.start in visited else ""
        parts.append(
            f'<g class="start {started}"><circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(START_R)}"/>'
            f'<line x1="{_f(cx)}" y1="{_f(cy + START_R)}" x2="{_f(cx)}" '
            f'y2="{_f(dy + first.y - 4)}" marker-end="url(#arrow-{"taken" if started else "next"})"'
            "/></g>"
        )
    # edges first, nodes over them
    for edge in layout.edges:
        is_taken = (edge.source, edge.target) in taken
        classes = (
            f"edge edge-{edge.kind}"
            + (" taken" if is_taken else "")
            + (" back" if edge.back else "")
        )
        marker = "taken" if is_taken else edge.kind
        d = ""
        for seg in edge.segments:
            p = [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(seg)]
            if not d:
                d = f"M{_f(p[0])},{_f(p[1])}"
            d += f" C{_f(p[2])},{_f(p[3])} {_f(p[4])},{_f(p[5])} {_f(p[6])},{_f(p[7])}"
        parts.append(
            f'<g class="{classes}" data-source="{escape(edge.source)}" '
            f'data-target="{escape(edge.target)}"><title>{escape(edge.source)} → '
            f"{escape(edge.target)} ({edge.kind}{': ' + escape(edge.label) if edge.label else ''})"
            f'</title><path d="{d}" marker-end="url(#arrow-{marker})"/>'
        )
        parts.append("</g>")
        if edge.label and edge.label_at is not None:
            lx, ly = edge.label_at[0] + dx, edge.label_at[1] + dy
            w = _text_w(edge.label) + 8
            rx = lx if edge.back else lx - w / 2
            labels.append(
                f'<g class="{classes.replace("edge ", "edge-label-group ", 1)}">'
                f'<rect class="edge-label-bg" x="{_f(rx)}" y="{_f(ly - 8)}" width="{_f(w)}" '
                f'height="15" rx="3"/><text class="edge-label" x="{_f(rx + w / 2)}" '
                f'y="{_f(ly + 3.5)}" text-anchor="middle">{escape(edge.label)}</text></g>'
            )
    for node in layout.nodes.values():
        _render_node(parts, labels, node, dx, dy, hl, visited, taken, top=top)


def _render_node(
    parts: list[str],
    labels: list[str],
    node: Node,
    dx: float,
    dy: float,
    hl: Highlight,
    visited: set[str],
    taken: set[tuple[str, str]],
    *,
    top: bool,
) -> None:
    x, y = node.x + dx, node.y + dy
    counts = hl.counts.get(node.name, {})
    active = int(counts.get("active", 0))
    failed = int(counts.get("failed", 0))
    classes = ["node", f"type-{node.type.lower()}"]
    if node.children:
        classes.append("container")
    if node.end:
        classes.append("end")
    if node.name in visited:
        classes.append("visited")
    if node.name == hl.current:
        classes.append("current")
        if hl.current_status:
            classes.append(f"status-{hl.current_status.lower()}")
    if node.name in hl.failed_states:
        classes.append("failed-here")
    if active:
        classes.append("has-active")
    if failed:
        classes.append("has-failed")
    name = escape(node.name)
    tip = f"{node.name} ({node.type})"
    if counts:
        tip += f" — {active} in it now, {failed} failed here"
    if node.comment:
        tip += f"\n{node.comment}"
    parts.append(f'<g class="{" ".join(classes)}" data-state="{name}"><title>{escape(tip)}</title>')
    link = hl.link.replace("{state}", _url_part(node.name)) if hl.link else None
    if link:
        parts.append(f'<a href="{escape(link)}">')
    parts.append(
        f'<rect class="box" x="{_f(x)}" y="{_f(y)}" width="{_f(node.w)}" '
        f'height="{_f(node.h)}" rx="8"/>'
    )
    if node.children:
        parts.append(
            f'<text class="name" x="{_f(x + 12)}" y="{_f(y + 19)}">{name}</text>'
            f'<text class="type" x="{_f(x + 12 + _text_w(node.name, 13) + 8)}" '
            f'y="{_f(y + 19)}">{escape(node.type)}</text>'
        )
    else:
        parts.append(
            f'<text class="name" x="{_f(x + node.w / 2)}" y="{_f(y + 21)}" '
            f'text-anchor="middle">{name}</text>'
            f'<text class="type" x="{_f(x + node.w / 2)}" y="{_f(y + 37)}" '
            f'text-anchor="middle">{escape(node.type)}</text>'
        )
    if link:
        parts.append("</a>")
    # count badges on the top right corner
    bx = x + node.w - 6
    for value, kind, label in ((failed, "failed", "failed here"), (active, "active", "now")):
        if not value:
            continue
        text = _compact(value)
        w = _text_w(text, 11) + 10
        bx -= w
        parts.append(
            f'<g class="badge badge-{kind}"><title>{value} {label}</title>'
            f'<rect x="{_f(bx)}" y="{_f(y - 9)}" width="{_f(w)}" height="17" rx="8.5"/>'
            f'<text x="{_f(bx + w / 2)}" y="{_f(y + 3.5)}" text-anchor="middle">{text}</text></g>'
        )
        bx -= 4
    for child, (cx, cy) in zip(node.children, _child_offsets(node, dx, dy), strict=True):
        if len(node.children) > 1:
            parts.append(
                f'<rect class="branch" x="{_f(cx - 6)}" y="{_f(cy - 4)}" '
                f'width="{_f(child.w + 12)}" height="{_f(child.h + 6)}" rx="6"/>'
            )
        _render_layout(parts, labels, child, cx, cy, hl, visited, taken, top=False)
    parts.append("</g>")


def _compact(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return str(value)


def _url_part(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def path_of(history: Iterable[Any]) -> list[str]:
    """The states an execution went through, in order (consecutive repeats — retries of
    one state — collapsed)."""
    out: list[str] = []
    for record in history:
        state = getattr(record, "state", None)
        if state is None and isinstance(record, Mapping):
            state = record.get("state")
        if state and (not out or out[-1] != state):
            out.append(str(state))
    return out
