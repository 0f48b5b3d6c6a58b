"""The review pack's charts, written as SVG without a plotting library: well-formed, each
value where it belongs, text escaped, the same bytes for the same data, and round ticks
that cover the values (segment_cadence/defs/review/charts.py)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from hypothesis import example, given
from hypothesis import strategies as st

from segment_cadence.defs.review import charts
from segment_cadence.defs.review.review_pack import Chart, chart_svg

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = [f"2025-{m:02d}" for m in range(1, 7)]


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")]


def test_each_kind_is_one_well_formed_svg_titled_with_its_alt_text():
    for chart in (
        Chart("lines", "Sizes", {"labels": MONTHS, "series": {"vip": [1, 2, 3, 4, 5, 6]}}, "L"),
        Chart("bars", "Attempts", {"labels": ["W1", "W2"], "values": [3, 1]}, "B"),
        Chart("heatmap", "Moves", {"rows": ["a"], "columns": ["b"], "matrix": [[2]]}, "H"),
    ):
        svg = chart_svg(chart)
        root = parsed(svg)
        assert root.get("role") == "img" and root.get("aria-label") == chart.alt
        assert root.find(f"{SVG}title").text == chart.alt
        assert chart.title in texts(root)
        assert svg == chart_svg(chart)  # the same data gives the same bytes


def test_a_line_per_series_broken_where_a_value_is_missing_and_named_in_the_legend_in_order():
    series = {"vip": [0.5, 0.6, None, 0.7, 0.7, 0.8], "new": [0.1, 0.2, 0.2, 0.3, 0.3, 0.3]}
    root = parsed(charts.lines("Retention", MONTHS, series, "alt"))
    lines = [(p.find(f"{SVG}title").text, p.get("points")) for p in root.iter(f"{SVG}polyline")]
    assert [name for name, _ in lines] == ["vip", "vip", "new"]
    assert [len(points.split()) for _, points in lines] == [2, 3, 6]
    assert len(list(root.iter(f"{SVG}circle"))) == 11  # a marker at every value present
    names = [t for t in texts(root) if t in series]
    assert names == ["vip", "new"]
    assert [t for t in texts(root) if t in MONTHS] == MONTHS


def test_a_higher_value_is_drawn_higher_on_the_same_scale():
    root = parsed(charts.lines("Sizes", MONTHS[:3], {"a": [10, 40, 20]}, "alt"))
    ys = [float(c.get("cy")) for c in root.iter(f"{SVG}circle")]
    assert ys[1] < ys[2] < ys[0]  # SVG's y grows downwards
    # The scale is linear: 40 - 20 is twice 20 - 10.
    assert math.isclose(ys[2] - ys[1], 2 * (ys[0] - ys[2]), rel_tol=1e-3)


def test_bars_are_as_tall_as_their_values_and_a_zero_has_no_height():
    root = parsed(charts.bars("Attempts", ["W1", "W2", "W3"], [3, 0, 12], "alt"))
    bars = [r for r in root.iter(f"{SVG}rect")]
    heights = [float(r.get("height")) for r in bars]
    assert heights[1] == 0
    assert math.isclose(heights[2], 4 * heights[0], rel_tol=1e-2)
    assert [r.find(f"{SVG}title").text for r in bars] == ["W1: 3", "W2: 0", "W3: 12"]
    # Counts get whole-number ticks.
    assert all(re.fullmatch(r"[\d,]+", t) for t in texts(root) if t[0].isdigit())


def test_the_heatmap_writes_each_count_but_zero_white_on_the_darker_half_and_escapes_names():
    names = ["new", "<lapsed & gone>"]
    root = parsed(charts.heatmap("Moves", names, names, [[0, 5], [1, 300]], "alt"))
    counts = {
        t.text: t.get("fill")
        for t in root.iter(f"{SVG}text")
        if t.get("fill") in ("#ffffff", "#000000")
    }
    assert counts == {"5": "#000000", "1": "#000000", "300": "#ffffff"}
    assert texts(root).count("<lapsed & gone>") == 2  # a row and a column, as written
    cells = [
        r.find(f"{SVG}title").text
        for r in root.iter(f"{SVG}rect")
        if r.find(f"{SVG}title") is not None
    ]
    assert "<lapsed & gone> to new: 1" in cells
    assert charts.heat_colour(0, 300) != charts.heat_colour(300, 300)


def test_a_tick_label_has_the_places_its_step_needs_however_small():
    assert charts.tick_label(1250, 250) == "1,250"
    assert charts.tick_label(0.75, 0.25) == "0.75"
    assert charts.tick_label(0.4, 0.2) == "0.4"
    assert charts.tick_label(5e-11, 2.5e-11) == "0.000000000050"


def test_drawing_the_charts_imports_no_plotting_library():
    probe = (
        "import sys\n"
        "from segment_cadence.defs.review.review_pack import Chart, chart_svg\n"
        "chart_svg(Chart('bars', 't', {'labels': ['a'], 'values': [1]}, 'alt'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


values = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)


@given(values, values, st.booleans())
@example(0.0, 1.192092896e-07, False)  # a span far below the 6 places steps were compared at
@example(0.0, 1.4e-09, False)
@example(
    0.0001528336402656391, -600000.0, False
)  # just above a tick of a wide range  # a step of 2.5e-10, once rounded to 10 places: 3e-10, 5e-10, ...
def test_ticks_are_evenly_spaced_round_values_covering_the_range(a, b, whole):
    if whole:
        a, b = float(round(a)), float(round(b))
    low, high = min(a, b), max(a, b)
    found = charts.ticks(low, high, whole=whole)
    assert found[0] <= low + 1e-6 and found[-1] >= high - 1e-6
    assert 2 <= len(found) <= 8
    step = found[1] - found[0]
    for x, y in zip(found, found[1:], strict=False):
        assert math.isclose(y - x, step, rel_tol=1e-6), found
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))
    if whole:
        assert float(step).is_integer()
