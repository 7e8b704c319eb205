"""A workflow definition drawn as SVG, with the path one saga took and where it is now.

Drawn from ``diagram.graph`` (the same nodes and edges as the Mermaid chart), laid out in columns:
the steps top to bottom, each step's compensation beside it (compensations run upwards), the saga
statuses a saga can end in around them. No JavaScript and nothing from the internet: the console
inlines the result. Pure: data in, a string out.

``saga_path`` reads a saga's history (the engine's ``HistoryLine`` events) and says which nodes it
visited, which edges it took and where it is; ``svg`` draws the chart with that path highlighted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from orchestrator.domain.diagram import Edge, Graph, Node
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.workflow import COMPENSATION_SUFFIX

BOX_W, BOX_H = 230, 64
END_W, END_H = 190, 46
ROW_GAP = 48  # between rows: room for the labels of vertical arrows
COL_GAP = 170  # between columns: room for the labels of sideways arrows
MARGIN = 16
CHAR_W = 6.1  # average width of a character of the 11px label font
LABEL_CHARS = 28  # a label longer than this is wrapped

# Which event leaves a node by which kind of edge (see diagram.Edge).
_EXIT_KIND = {
    "step_succeeded": "ok",
    "step_compensated": "ok",
    "step_failed": "failed",
    "step_timed_out": "no_reply",
    "operator_cancel": "no_reply",
    "compensation_failed": "exhausted",
    "compensation_abandoned": "was_done",
}

_STEP_CLASS = {
    StepStatus.RUNNING: "running",
    StepStatus.SUCCEEDED: "succeeded",
    StepStatus.FAILED: "failed",
    StepStatus.TIMED_OUT: "timed-out",
    StepStatus.ABANDONED: "timed-out",
    StepStatus.COMPENSATING: "succeeded",
    StepStatus.COMPENSATED: "succeeded",
}


_END_CLASS = {
    SagaStatus.COMPLETED: "succeeded",
    SagaStatus.FAILED: "cancelled",
    SagaStatus.COMPENSATED: "cancelled",
    SagaStatus.COMPENSATION_FAILED: "failed",
}


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a saga's history, as much as the path needs."""

    event: str
    step: str | None = None
    to_status: str | None = None


@dataclass
class SagaPath:
    visited: set[str] = field(default_factory=set)
    taken: set[int] = field(default_factory=set)  # indexes into graph.edges
    current: str | None = None  # the node the saga is at (a terminal status once it ended)
    states: dict[str, str] = field(default_factory=dict)  # node id -> CSS class of its outcome


def saga_path(
    graph: Graph,
    history: Iterable[Moment],
    *,
    status: SagaStatus,
    step_statuses: Sequence[tuple[str, StepStatus]] = (),
) -> SagaPath:
    """The nodes and edges a saga went through, replaying its history on the chart."""
    ids = {n.id for n in graph.nodes}
    path = SagaPath()
    at: str | None = None
    leaving: str | None = None
    timed_out: set[str] = set()

    def arrive(node: str) -> None:
        nonlocal at, leaving
        if node not in ids:
            return
        if at is not None and at != node:
            index = _edge_between(graph.edges, at, node, leaving)
            if index is not None:
                path.taken.add(index)
        path.visited.add(node)
        at, leaving = node, None

    for moment in history:
        if moment.event == "saga_started":
            arrive("start")
        elif moment.event == "command_sent" and moment.step:
            arrive(_node_of_step(moment.step))
        elif moment.event == "saga_finished" and moment.to_status:
            arrive(moment.to_status)
        elif moment.event in ("engine_error", "operator_retry") and moment.to_status:
            # Not an arrow of the chart: the saga jumps (parked, or sent back to compensating).
            at, leaving = (moment.to_status if moment.to_status in ids else at), None
            if moment.to_status in ids:
                path.visited.add(moment.to_status)
        elif moment.event in _EXIT_KIND:
            leaving = _EXIT_KIND[moment.event]
            if leaving == "no_reply" and at is not None:
                timed_out.add(at)  # possibly done: undone all the same
    path.current = at
    for name, step_status in step_statuses:
        css = _STEP_CLASS.get(step_status)
        if css is not None:
            path.states[f"do_{name}"] = css
        if step_status == StepStatus.COMPENSATED:
            path.states[f"undo_{name}"] = "succeeded"
        elif step_status == StepStatus.COMPENSATING:
            # Being undone; once the saga gave up on it, the undo is what failed.
            stuck = status == SagaStatus.COMPENSATION_FAILED
            path.states[f"undo_{name}"] = "failed" if stuck else "running"
    for node in timed_out:
        path.states[node] = "timed-out"
    if status.terminal and at is not None:
        path.states[at] = _END_CLASS[status]
    return path


def _node_of_step(step: str) -> str:
    if step.endswith(COMPENSATION_SUFFIX):
        return f"undo_{step.removesuffix(COMPENSATION_SUFFIX)}"
    return f"do_{step}"


def _edge_between(edges: Sequence[Edge], source: str, target: str, kind: str | None) -> int | None:
    candidates = [i for i, e in enumerate(edges) if e.source == source and e.target == target]
    for i in candidates:
        if edges[i].kind == kind:
            return i
    return candidates[0] if candidates else None


# --- layout --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Box:
    x: float
    y: float
    w: float
    h: float
    col: int
    row: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _layout(graph: Graph) -> tuple[dict[str, _Box], float, float]:
    """Columns: [FAILED] steps compensations [COMPENSATION_FAILED]. Rows: start, one per step,
    COMPLETED. COMPENSATED sits above the compensations (they run upwards)."""
    steps = [n for n in graph.nodes if n.kind == "do"]
    has = {n.id for n in graph.nodes}
    undos = [n for n in graph.nodes if n.kind == "undo"]
    cols: list[str] = []
    if SagaStatus.FAILED.value in has:
        cols.append("failed")
    cols.append("do")
    if undos or SagaStatus.COMPENSATED.value in has:
        cols.append("undo")
    if SagaStatus.COMPENSATION_FAILED.value in has:
        cols.append("stuck")
    widths = {"failed": END_W, "do": BOX_W, "undo": BOX_W, "stuck": END_W}
    col_x: dict[str, float] = {}
    x = float(MARGIN)
    for c in cols:
        col_x[c] = x
        x += widths[c] + COL_GAP
    width = x - COL_GAP + MARGIN
    row_h = BOX_H + ROW_GAP

    def row_y(row: float) -> float:
        return MARGIN + row * row_h

    def place(node: Node, col: str, row: float) -> _Box:
        w = widths[col] if node.kind in ("do", "undo") else END_W
        h = BOX_H if node.kind in ("do", "undo") else END_H
        x0 = col_x[col] + (widths[col] - w) / 2
        y0 = row_y(row) + (BOX_H - h) / 2
        return _Box(x0, y0, w, h, cols.index(col), round(row * 2))

    boxes: dict[str, _Box] = {}
    for node in graph.nodes:
        if node.kind == "start":
            boxes[node.id] = place(node, "do", 0)
        elif node.kind == "do":
            boxes[node.id] = place(node, "do", 1 + (node.position or 0))
        elif node.kind == "undo":
            boxes[node.id] = place(node, "undo", 1 + (node.position or 0))
    last_row = 1 + len(steps)
    for node in graph.nodes:
        if node.kind != "end":
            continue
        if node.status == SagaStatus.COMPLETED:
            boxes[node.id] = place(node, "do", last_row)
        elif node.status == SagaStatus.FAILED:
            sources = [boxes[e.source].row for e in graph.edges if e.target == node.id]
            boxes[node.id] = place(node, "failed", min(sources, default=2) / 2)
        elif node.status == SagaStatus.COMPENSATED:
            boxes[node.id] = place(node, "undo", 0)
        else:
            rows = [boxes[u.id].row / 2 for u in undos] or [1.0]
            boxes[node.id] = place(node, "stuck", (min(rows) + max(rows)) / 2)
    height = row_y(last_row) + BOX_H + MARGIN
    return boxes, width, height


# --- drawing -------------------------------------------------------------------------------

_STYLE = """
.wf text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
.wf .node rect{stroke-width:1.5}
.wf .do rect{fill:#fff;stroke:#7b8794}
.wf .undo rect{fill:#fff7ed;stroke:#e08a3c}
.wf .start rect{fill:#eef2f7;stroke:#7b8794}
.wf .end rect{fill:#fdf0ef;stroke:#c0564b}
.wf .end.COMPLETED rect{fill:#ecf8f0;stroke:#2f9e5b}
.wf .title{font-size:13px;font-weight:600;fill:#1f2933}
.wf .sub{font-size:11px;fill:#52606d}
.wf .topic{font-size:10.5px;fill:#7b8794}
.wf .node.unvisited{opacity:.55}
.wf .node.visited rect{stroke:#1f2933;stroke-width:2.2}
.wf .node.succeeded rect{fill:#e3f6ea;stroke:#2f9e5b}
.wf .node.failed rect{fill:#fde8e6;stroke:#c0392b}
.wf .node.timed-out rect{fill:#fff1d6;stroke:#c77c02}
.wf .node.running rect{fill:#e6f0ff;stroke:#2563eb}
.wf .node.cancelled rect{fill:#f1f3f5;stroke:#52606d}
.wf .node.current rect{stroke:#2563eb;stroke-width:3.5}
.wf .here{font-size:11px;font-weight:700;fill:#2563eb}
.wf .edge path{fill:none;stroke:#c3cad3;stroke-width:1.3}
.wf .edge.dotted path{stroke-dasharray:5 4}
.wf .edge.taken path{stroke:#2563eb;stroke-width:2.6}
.wf .edge .label{font-size:10.5px;fill:#7b8794}
.wf .edge.taken .label{fill:#1e40af;font-weight:600}
.wf .label-bg{fill:#fff;opacity:.9}
.wf .arrow{fill:#c3cad3}
.wf .arrow-taken{fill:#2563eb}
"""


def svg(graph: Graph, path: SagaPath | None = None, *, title: str | None = None) -> str:
    """The chart as a standalone ``<svg>`` element (its own styles inside)."""
    boxes, width, height = _layout(graph)
    ports = _ports(graph, boxes)
    out = [
        f'<svg class="wf" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}"'
        f' width="{width:.0f}" height="{height:.0f}" role="img"'
        f' aria-label="{escape(title or "workflow diagram")}">',
        f"<style>{_STYLE}</style>",
        "<defs>",
        _marker("arrow", "arrow"),
        _marker("arrow-taken", "arrow-taken"),
        "</defs>",
    ]
    if title:
        out.append(f"<title>{escape(title)}</title>")
    # Untaken edges first, so the saga's path is drawn on top.
    order = sorted(range(len(graph.edges)), key=lambda i: path is not None and i in path.taken)
    edge_svg = [_edge(graph.edges[i], i, ports, path) for i in order]
    out.extend(edge_svg)
    for node in graph.nodes:
        out.append(_node(node, boxes[node.id], path))
    out.append("</svg>")
    return "\n".join(out)


def _marker(marker_id: str, css: str) -> str:
    return (
        f'<marker id="{marker_id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9"'
        f' markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path class="{css}"'
        ' d="M0,0 L10,5 L0,10 z"/></marker>'
    )


def _ports(
    graph: Graph, boxes: dict[str, _Box]
) -> dict[int, tuple[tuple[float, float, str], tuple[float, float, str]]]:
    """Where each edge leaves its source and enters its target: the side facing the other end,
    edges sharing a side spread along it in the order of their other ends."""
    sides: dict[tuple[str, str], list[tuple[float, int, bool]]] = {}
    chosen: dict[int, tuple[str, str]] = {}
    for i, e in enumerate(graph.edges):
        a, b = boxes[e.source], boxes[e.target]
        if a.col == b.col:
            s, t = ("bottom", "top") if b.row > a.row else ("top", "bottom")
        elif b.col > a.col:
            s, t = "right", "left"
        else:
            s, t = "left", "right"
        chosen[i] = (s, t)
        sort_b = b.cy if s in ("left", "right") else b.cx
        sort_a = a.cy if t in ("left", "right") else a.cx
        sides.setdefault((e.source, s), []).append((sort_b, i, True))
        sides.setdefault((e.target, t), []).append((sort_a, i, False))
    points: dict[tuple[int, bool], tuple[float, float, str]] = {}
    for (node_id, side), users in sides.items():
        box = boxes[node_id]
        users.sort()
        n = len(users)
        for k, (_, i, is_source) in enumerate(users):
            f = (k + 1) / (n + 1)
            if side in ("left", "right"):
                x = box.x if side == "left" else box.x + box.w
                y = box.y + box.h * (0.5 if n == 1 else 0.2 + 0.6 * f)
            else:
                y = box.y if side == "top" else box.y + box.h
                x = box.x + box.w * (0.5 if n == 1 else 0.2 + 0.6 * f)
            points[(i, is_source)] = (x, y, side)
    return {i: (points[(i, True)], points[(i, False)]) for i in chosen}


_OUT = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, -1.0), "bottom": (0.0, 1.0)}


def _edge(
    edge: Edge,
    index: int,
    ports: dict[int, tuple[tuple[float, float, str], tuple[float, float, str]]],
    path: SagaPath | None,
) -> str:
    (x1, y1, s1), (x2, y2, s2) = ports[index]
    reach = max(30.0, (abs(x2 - x1) if s1 in ("left", "right") else abs(y2 - y1)) / 2)
    c1 = (x1 + _OUT[s1][0] * reach, y1 + _OUT[s1][1] * reach)
    c2 = (x2 + _OUT[s2][0] * reach, y2 + _OUT[s2][1] * reach)
    taken = path is not None and index in path.taken
    css = ["edge", edge.kind]
    if edge.dotted:
        css.append("dotted")
    if taken:
        css.append("taken")
    marker = "arrow-taken" if taken else "arrow"
    d = f"M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}"
    parts = [
        f'<g class="{" ".join(css)}" data-source="{edge.source}" data-target="{edge.target}">',
        f"<title>{escape(edge.label or 'start')}</title>",
        f'<path d="{d}" marker-end="url(#{marker})"/>',
    ]
    label = _short_label(edge)
    if label:
        # The curve's midpoint (t = 0.5 of the cubic Bezier).
        mx = (x1 + 3 * c1[0] + 3 * c2[0] + x2) / 8
        my = (y1 + 3 * c1[1] + 3 * c2[1] + y2) / 8
        lines = _wrap(label)
        if s1 in ("left", "right") and abs(y2 - y1) < 20:
            my -= 6.5 * len(lines) + 3  # above a flat arrow, not over it
        w = max(len(line) for line in lines) * CHAR_W + 8
        h = 13 * len(lines) + 4
        parts.append(
            f'<rect class="label-bg" x="{mx - w / 2:.1f}" y="{my - h / 2:.1f}" width="{w:.1f}"'
            f' height="{h}" rx="3"/>'
        )
        for k, line in enumerate(lines):
            y = my - h / 2 + 13 * (k + 1) - 1
            parts.append(
                f'<text class="label" x="{mx:.1f}" y="{y:.1f}" text-anchor="middle">'
                f"{escape(line)}</text>"
            )
    parts.append("</g>")
    return "".join(parts)


def _short_label(edge: Edge) -> str:
    if edge.kind == "start":
        return ""
    if edge.kind == "exhausted":
        return "out of attempts"
    if edge.kind == "no_reply":
        return "no reply / cancel"
    return edge.label


def _wrap(text: str) -> list[str]:
    words = text.replace(" / ", " /\u00a0").split(" ")
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= LABEL_CHARS:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return [line.replace("\u00a0", " ") for line in lines]


def _node(node: Node, box: _Box, path: SagaPath | None) -> str:
    css = ["node", node.kind]
    if node.status is not None:
        css.append(node.status.value)
    if path is not None:
        css.append("visited" if node.id in path.visited else "unvisited")
        if node.id in path.states:
            css.append(path.states[node.id])
        if node.id == path.current:
            css.append("current")
    rx = box.h / 2 if node.kind in ("start", "end") else 8
    parts = [
        f'<g class="{" ".join(css)}" data-node="{escape(node.id)}">',
        f"<title>{escape(_tooltip(node))}</title>",
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}"'
        f' rx="{rx:.1f}"/>',
    ]
    if node.kind in ("do", "undo"):
        lines = [
            ("title", node.title),
            ("sub", f"sends {node.sends}" if node.sends else "sends a command"),
            ("topic", f"→ {node.topic}" if node.topic else ""),
        ]
        baseline = [box.y + 21, box.y + 38, box.y + 53]
    elif node.kind == "end":
        lines = [("title", node.title), ("sub", node.subtitle or "")]
        baseline = [box.y + 19, box.y + 34]
    else:
        lines = [("title", node.title)]
        baseline = [box.cy + 4.5]
    limit = int((box.w - 16) / (CHAR_W * (1.2 if node.kind != "do" else 1.15)))
    for (cls, text), y in zip(lines, baseline, strict=True):
        if text:
            shown = text if len(text) <= limit else text[: limit - 1] + "…"
            parts.append(
                f'<text class="{cls}" x="{box.cx:.1f}" y="{y:.1f}" text-anchor="middle">'
                f"{escape(shown)}</text>"
            )
    if path is not None and node.id == path.current:
        parts.append(f'<text class="here" x="{box.x + 2:.1f}" y="{box.y - 6:.1f}">● now</text>')
    parts.append("</g>")
    return "".join(parts)


def _tooltip(node: Node) -> str:
    if node.kind in ("do", "undo"):
        return f"{node.title}: {node.sends or 'a command'} → {node.topic}"
    if node.kind == "end":
        return f"{node.title} ({node.subtitle})"
    return node.title
