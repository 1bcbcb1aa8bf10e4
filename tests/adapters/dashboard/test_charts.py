"""The SVG charts draw the numbers they are given, escaped, and say them in titles."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from adapters.dashboard import charts
from bot.services.analytics import Cell, Coverage, CoverageRow

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def marks(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == kind]


def test_heatmap_cells_carry_their_numbers_and_say_them() -> None:
    coverage = Coverage(
        teams=("Billing", "Devices & Network"),
        rows=(
            CoverageRow("refunds", "billing", (Cell(4, 3), Cell(0, 0)), org_experts=4, asked=0),
            CoverageRow("roaming", None, (Cell(0, 0), Cell(1, 0)), org_experts=1, asked=2),
            CoverageRow("wifi calling", None, (Cell(), Cell()), org_experts=0, asked=5),
        ),
    )
    svg = parse(charts.heatmap(coverage))
    cells = {
        (g.get("data-tag"), g.get("data-team")): (g.get("data-experts"), g.get("data-available"))
        for g in marks(svg, "cell")
    }
    assert cells == {
        ("refunds", "Billing"): ("4", "3"),
        ("refunds", "Devices & Network"): ("0", "0"),
        ("roaming", "Billing"): ("0", "0"),
        ("roaming", "Devices & Network"): ("1", "0"),
        ("wifi calling", "Billing"): ("0", "0"),
        ("wifi calling", "Devices & Network"): ("0", "0"),
    }
    first = marks(svg, "cell")[0]
    assert first.findtext(f"{SVG}title") == "refunds · Billing: 4 experts, 3 available now"
    assert first.findtext(f"{SVG}text") == "4 · 3 now"
    rows = {t.get("data-tag"): t for t in svg.iter(f"{SVG}text") if t.get("class") == "row"}
    assert rows["roaming"].get("data-risk") == "single-expert"
    assert rows["wifi calling"].get("data-gap") == "gap"
    assert rows["refunds"].get("data-risk") is None
    # Empty, lone and well covered cells differ in colour.
    colours = {charts.heat_colour(n) for n in (0, 1, 4)}
    assert len(colours) == 3


def test_hostile_names_are_escaped_in_the_svg() -> None:
    hostile = '"><script>alert(1)</script>'
    coverage = Coverage((hostile,), (CoverageRow(hostile, None, (Cell(1, 1),), 1, 0),))
    markup = str(charts.heatmap(coverage))
    assert "<script>" not in markup
    svg = parse(markup)  # still well-formed
    assert marks(svg, "cell")[0].get("data-team") == hostile


def test_bars_lines_and_groups_hold_their_values() -> None:
    bars = parse(charts.bar_chart("t", "Test", [("< 1 min", 3), ("1–3 min", 0), ("≥ 1 h", 7)]))
    assert [(g.get("data-label"), g.get("data-value")) for g in marks(bars, "bar")] == [
        ("< 1 min", "3"),
        ("1–3 min", "0"),
        ("≥ 1 h", "7"),
    ]
    heights = [float(g.find(f"{SVG}rect").get("height")) for g in marks(bars, "bar")]  # type: ignore[union-attr]
    assert heights[1] == 0 and heights[2] > heights[0] > 0
    line = parse(charts.line_chart("t", "Test", [("05 Oct", 2.5), ("12 Oct", None), ("19 Oct", 4)]))
    assert [(g.get("data-label"), g.get("data-value")) for g in marks(line, "point")] == [
        ("05 Oct", "2.5"),
        ("19 Oct", "4"),
    ]
    assert not list(line.iter(f"{SVG}line"))[1:]  # no segment across the missing week
    grouped = parse(
        charts.grouped_bars(
            "t", "Test", ["w1", "w2"], ["A", "B"], {("w1", "A"): 50.0, ("w2", "B"): None}, "%"
        )
    )
    values = {
        (g.get("data-group"), g.get("data-series")): g.get("data-value")
        for g in marks(grouped, "bar")
    }
    # A week with no huddles has no rate: drawn empty, not as 0%.
    assert values == {("w1", "A"): "50", ("w1", "B"): "", ("w2", "A"): "", ("w2", "B"): ""}
