"""Template helpers: highlighted JSON, ``<time>`` tags, durations, and the dashboard's
charts as inline SVG. Everything returned as markup is built from escaped pieces."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

__all__ = [
    "bar_chart",
    "duration",
    "highlight_json",
    "number",
    "ordered_definition",
    "size_chart",
    "time_tag",
]

_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")(?P<colon>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<literal>\btrue\b|\bfalse\b|\bnull\b)"
    r"|(?P<other>[^\"\d\-tfn]+|.)",
    re.DOTALL,
)


def highlight_json(value: Any, *, indent: int = 2, limit: int = 200_000) -> Markup:
    """``value`` as pretty JSON with ``<span class="j-key|j-str|j-num|j-lit">`` tokens."""
    if isinstance(value, str | bytes) and not isinstance(value, str):
        value = value.decode("utf-8", "replace")
    try:
        text = json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if match.group("string") is not None:
            css = "j-key" if match.group("colon") else "j-str"
            out.append(f'<span class="{css}">{escape(match.group("string"))}</span>')
            if match.group("colon"):
                out.append(escape(match.group("colon")))
        elif kind == "number":
            out.append(f'<span class="j-num">{escape(match.group(0))}</span>')
        elif kind == "literal":
            out.append(f'<span class="j-lit">{escape(match.group(0))}</span>')
        else:
            out.append(escape(match.group(0)))
    if cut:
        out.append('\n<span class="j-cut">… (cut)</span>')
    return Markup("".join(out))


def time_tag(value: Any, *, relative: bool = False) -> Markup:
    """A ``<time>`` the page's script shows in the browser's time zone."""
    if value is None or value == "":
        return Markup('<span class="muted">—</span>')
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    kind = "relative" if relative else "local"
    return Markup(
        f'<time datetime="{escape(text)}" data-format="{kind}" title="{escape(text)}">'
        f"{escape(text.replace('T', ' ')[:19])}</time>"
    )


def duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    value = float(seconds)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    if value < 86400:
        return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"
    return f"{int(value // 86400)} d {int(value % 86400 // 3600)} h"


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def bytes_text(value: Any) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _nice_max(value: float) -> float:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def bar_chart(rows: Sequence[Mapping[str, Any]], *, width: int = 640, height: int = 200) -> Markup:
    """Processed (and failed) per day: grouped bars, ``rows`` = [{day, processed, failed}]."""
    if not rows:
        return Markup('<p class="muted">No daily counters yet.</p>')
    left, bottom, top = 44, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _nice_max(max(max(r["processed"], r["failed"]) for r in rows))
    slot = plot_w / len(rows)
    bar = max(2.0, min(18.0, slot * 0.38))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="processed and failed per day">'
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_short_number(value))}</text>"
        )
    every = max(1, len(rows) // 10)
    for index, row in enumerate(rows):
        x = left + slot * index + slot / 2
        for offset, key in ((-bar / 2 - 1, "processed"), (bar / 2 + 1, "failed")):
            h = plot_h * row[key] / peak if peak else 0
            parts.append(
                f'<rect class="bar bar-{key}" x="{x + offset - bar / 2:.1f}" '
                f'y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                f"<title>{escape(str(row['day']))}: {row[key]} {key}</title></rect>"
            )
        if index % every == 0 or index == len(rows) - 1:
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(str(row['day'])[5:])}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def size_chart(queues: Sequence[Mapping[str, Any]], *, width: int = 640) -> Markup:
    """Queue sizes: one stacked horizontal bar per queue, by job state."""
    states = ("active", "pending", "scheduled", "retry", "dead")
    if not queues:
        return Markup('<p class="muted">No queues yet.</p>')
    if not any(q[s] for q in queues for s in states):
        return Markup('<p class="muted">Every queue is empty.</p>')
    row_h, left = 26, 96
    height = row_h * len(queues) + 28
    peak = _nice_max(max(sum(q[s] for s in states) for q in queues) or 1)
    plot_w = width - left - 12
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="queue sizes">'
    ]
    for index, queue in enumerate(queues):
        y = 6 + index * row_h
        parts.append(
            f'<text class="axis" x="{left - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(str(queue['name']))}</text>"
        )
        x = float(left)
        for state in states:
            value = queue[state]
            if not value:
                continue
            w = plot_w * value / peak
            parts.append(
                f'<rect class="seg seg-{state}" x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" '
                f'height="{row_h - 8}"><title>{escape(str(queue["name"]))}: {value} {state}'
                "</title></rect>"
            )
            x += w
    parts.append(
        f'<text class="axis" x="{left}" y="{height - 4}">0</text>'
        f'<text class="axis" x="{width - 12}" y="{height - 4}" text-anchor="end">'
        f"{escape(_short_number(peak))}</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


_TOP_KEYS = ("Comment", "QueryLanguage", "StartAt", "TimeoutSeconds", "Version", "States")
_STATE_KEYS = (
    "Type",
    "Comment",
    "QueryLanguage",
    "Resource",
    "Arguments",
    "Parameters",
    "InputPath",
    "ItemsPath",
    "Items",
    "ItemSelector",
    "ItemProcessor",
    "Iterator",
    "Branches",
    "Choices",
    "Default",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Result",
    "ResultSelector",
    "ResultPath",
    "OutputPath",
    "Output",
    "Assign",
    "Retry",
    "Catch",
    "Error",
    "Cause",
    "Next",
    "End",
)


def _ordered(value: Mapping[str, Any], first: Sequence[str]) -> dict[str, Any]:
    keys = [k for k in first if k in value] + [k for k in value if k not in first]
    return {k: value[k] for k in keys}


def ordered_definition(document: Any) -> Any:
    """An ASL document with its keys in reading order (JSONB keeps its own order): the
    top fields first, states from ``StartAt`` in the order they can be reached."""
    if not isinstance(document, Mapping):
        return document
    out = _ordered(document, _TOP_KEYS)
    states = document.get("States")
    if isinstance(states, Mapping):
        order: list[str] = []
        queue = [document.get("StartAt")]
        while queue:
            name = queue.pop(0)
            if not isinstance(name, str) or name in order or name not in states:
                continue
            order.append(name)
            spec = states[name]
            if isinstance(spec, Mapping):
                targets = [spec.get("Next"), spec.get("Default")]
                targets += [
                    c.get("Next") for c in spec.get("Choices", []) if isinstance(c, Mapping)
                ]
                targets += [c.get("Next") for c in spec.get("Catch", []) if isinstance(c, Mapping)]
                queue.extend(targets)
        order += [name for name in states if name not in order]
        ordered_states = {}
        for name in order:
            spec = states[name]
            if isinstance(spec, Mapping):
                spec = _ordered(spec, _STATE_KEYS)
                for nested in ("ItemProcessor", "Iterator"):
                    if isinstance(spec.get(nested), Mapping):
                        spec[nested] = ordered_definition(spec[nested])
                if isinstance(spec.get("Branches"), list):
                    spec["Branches"] = [ordered_definition(b) for b in spec["Branches"]]
            ordered_states[name] = spec
        out["States"] = ordered_states
    return out
