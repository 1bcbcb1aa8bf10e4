"""Charts as inline SVG, drawn on the server: no script, no CDN, readable by tests.

Every mark carries the number it draws in `data-*` attributes and says it in
a `<title>` (a tooltip, and what a screen reader reads), so a test can check
that the picture shows the numbers the analytics computed. Every value that
reaches the markup is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from markupsafe import Markup

from bot.services.analytics import Coverage

# Tag names and team names are user text: they are escaped, and cut to fit.
LABEL_CHARS = 28
PALETTE = ("#2f6db5", "#d9822b", "#3a9a5b", "#8e5bb5", "#c2464b", "#5f7f8f")
# Experts in a cell → its colour: none (neutral), a lone expert (amber), then greens.
HEAT = ((0, "#eef1f5"), (1, "#fbe1a6"), (2, "#d4ebd0"), (4, "#9fd19a"), (7, "#5cae63"))
FONT = 'font-family="system-ui, sans-serif"'


def _attrs(**values: object) -> Markup:
    """`data_tag="x"` → ` data-tag="x"`, every value escaped."""
    return Markup("").join(
        Markup(' {}="{}"').format(name.replace("_", "-"), value)
        for name, value in values.items()
        if value is not None
    )


def _svg(kind: str, width: float, height: float, label: str, body: Markup) -> Markup:
    return Markup(
        '<svg class="chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'width="{}" height="{}" role="img" aria-label="{}" {}>{}</svg>'
    ).format(kind, width, height, width, height, label, Markup(FONT), body)


def _cut(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def heat_colour(experts: int) -> str:
    colour = HEAT[0][1]
    for floor, shade in HEAT:
        if experts >= floor:
            colour = shade
    return colour


def heatmap(coverage: Coverage) -> Markup:
    """Tags × teams: each cell the number of experts, and how many are available now."""
    label_w, cell_w, cell_h, head_h = 210, 118, 22, 44
    columns = len(coverage.teams)
    width = label_w + cell_w * max(columns, 1) + 10
    height = head_h + cell_h * len(coverage.rows) + 6
    parts = []
    for index, team in enumerate(coverage.teams):
        x = label_w + cell_w * index + cell_w / 2
        parts.append(
            Markup(
                '<text class="column" x="{}" y="{}" text-anchor="middle" font-size="12" '
                'font-weight="600"{}>{}</text>'
            ).format(x, head_h - 14, _attrs(data_team=team), _cut(team, 18))
        )
    for row_index, row in enumerate(coverage.rows):
        y = head_h + cell_h * row_index
        flag = " ⚠" if row.single_expert else (" ✕" if row.org_experts == 0 else "")
        indent = 14 if row.parent else 4
        parts.append(
            Markup('<text class="row" x="{}" y="{}" font-size="12"{}>{}{}</text>').format(
                indent,
                y + 15,
                _attrs(
                    data_tag=row.tag,
                    data_org_experts=row.org_experts,
                    data_asked=row.asked,
                    data_risk="single-expert" if row.single_expert else None,
                    data_gap="gap" if row.gap else None,
                ),
                _cut(row.tag),
                flag,
            )
        )
        for index, (team, cell) in enumerate(zip(coverage.teams, row.cells, strict=True)):
            x = label_w + cell_w * index
            title = (
                f"{row.tag} · {team}: {cell.experts} expert{'s' if cell.experts != 1 else ''}, "
                f"{cell.available} available now"
            )
            parts.append(
                Markup(
                    '<g class="cell"{}><rect x="{}" y="{}" width="{}" height="{}" rx="3" '
                    'fill="{}" stroke="#ffffff"/><text x="{}" y="{}" text-anchor="middle" '
                    'font-size="12">{}</text><title>{}</title></g>'
                ).format(
                    _attrs(
                        data_tag=row.tag,
                        data_team=team,
                        data_experts=cell.experts,
                        data_available=cell.available,
                    ),
                    x + 1,
                    y + 1,
                    cell_w - 2,
                    cell_h - 2,
                    heat_colour(cell.experts),
                    x + cell_w / 2,
                    y + 15,
                    f"{cell.experts} · {cell.available} now" if cell.experts else "0",
                    title,
                )
            )
    return _svg("heatmap", width, height, "Experts per tag and team", Markup("").join(parts))


def bar_chart(
    kind: str, title: str, bars: Sequence[tuple[str, float]], unit: str = "", *, height: int = 200
) -> Markup:
    """Vertical bars, one per (label, value)."""
    left, bottom, top, bar_w, gap = 36, 40, 16, 56, 18
    width = left + (bar_w + gap) * max(len(bars), 1) + gap
    most = max((value for _, value in bars), default=0) or 1
    plot = height - bottom - top
    parts = [_axis(left, top, plot, width, most, unit)]
    for index, (label, value) in enumerate(bars):
        x = left + gap + (bar_w + gap) * index
        h = plot * value / most
        parts.append(
            Markup(
                '<g class="bar"{}><rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>'
                '<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>'
                "<title>{}: {}{}</title></g>"
            ).format(
                _attrs(data_label=label, data_value=_number(value)),
                x,
                top + plot - h,
                bar_w,
                h,
                PALETTE[0],
                x + bar_w / 2,
                top + plot - h - 4,
                _number(value),
                x + bar_w / 2,
                height - bottom + 16,
                _cut(label, 12),
                label,
                _number(value),
                unit,
            )
        )
    return _svg(f"bars {kind}", width, height, title, Markup("").join(parts))


def grouped_bars(
    kind: str,
    title: str,
    groups: Sequence[str],
    series: Sequence[str],
    values: dict[tuple[str, str], float | None],
    unit: str = "",
    *,
    height: int = 220,
    most: float | None = None,
) -> Markup:
    """For each group (a week), one bar per series (a team), with a legend."""
    left, bottom, top, bar_w, gap = 36, 56, 16, 14, 16
    group_w = bar_w * max(len(series), 1) + gap
    width = max(left + group_w * max(len(groups), 1) + gap, 320)
    top_value = most or max((v for v in values.values() if v is not None), default=0) or 1
    plot = height - bottom - top
    parts = [_axis(left, top, plot, width, top_value, unit)]
    for g_index, group in enumerate(groups):
        x0 = left + gap + group_w * g_index
        for s_index, name in enumerate(series):
            value = values.get((group, name))
            h = plot * (value or 0) / top_value
            x = x0 + bar_w * s_index
            parts.append(
                Markup(
                    '<g class="bar"{}><rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                    "<title>{} · {}: {}</title></g>"
                ).format(
                    _attrs(
                        data_group=group,
                        data_series=name,
                        data_value="" if value is None else _number(value),
                    ),
                    x,
                    top + plot - h,
                    bar_w - 2,
                    h,
                    PALETTE[s_index % len(PALETTE)],
                    group,
                    name,
                    "no huddles" if value is None else f"{_number(value)}{unit}",
                )
            )
        parts.append(
            Markup('<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>').format(
                x0 + bar_w * len(series) / 2, height - bottom + 16, group
            )
        )
    parts.append(_legend(series, height - 22))
    return _svg(f"grouped {kind}", width, height, title, Markup("").join(parts))


def line_chart(
    kind: str, title: str, points: Sequence[tuple[str, float | None]], unit: str = ""
) -> Markup:
    """A line through the known points; a gap where a week has no value."""
    left, bottom, top, step, height = 44, 40, 16, 72, 200
    width = left + step * max(len(points), 1)
    most = max((v for _, v in points if v is not None), default=0) or 1
    plot = height - bottom - top
    parts = [_axis(left, top, plot, width, most, unit)]
    coords = []
    for index, (label, value) in enumerate(points):
        x = left + step / 2 + step * index
        parts.append(
            Markup('<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>').format(
                x, height - bottom + 16, label
            )
        )
        if value is None:
            coords.append(None)
            continue
        y = top + plot - plot * value / most
        coords.append((x, y))
        parts.append(
            Markup(
                '<g class="point"{}><circle cx="{}" cy="{}" r="4" fill="{}"/>'
                "<title>{}: {}{}</title></g>"
            ).format(
                _attrs(data_label=label, data_value=_number(value)),
                x,
                y,
                PALETTE[0],
                label,
                _number(value),
                unit,
            )
        )
    for start, end in pairwise(coords):
        if start is not None and end is not None:
            parts.insert(
                1,
                Markup(
                    '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/>'
                ).format(*start, *end, PALETTE[0]),
            )
    return _svg(f"line {kind}", width, height, title, Markup("").join(parts))


def _axis(left: float, top: float, plot: float, width: float, most: float, unit: str) -> Markup:
    return Markup(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        '<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#666">{}{}</text>'
        '<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#666">0</text>'
    ).format(
        left,
        top + plot,
        width,
        top + plot,
        left - 4,
        top + 8,
        _number(most),
        unit,
        left - 4,
        top + plot,
    )


def _legend(series: Sequence[str], y: float) -> Markup:
    parts = []
    x = 36.0
    for index, name in enumerate(series):
        parts.append(
            Markup(
                '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
                '<text x="{}" y="{}" font-size="11">{}</text>'
            ).format(x, y, PALETTE[index % len(PALETTE)], x + 14, y + 9, _cut(name, 24))
        )
        x += 24 + 7 * min(len(name), 24)
    return Markup('<g class="legend">{}</g>').format(Markup("").join(parts))


def _number(value: float) -> str:
    """Whole numbers without a decimal point; others to one decimal."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
