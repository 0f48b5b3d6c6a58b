"""The error-bars chart (segment_cadence/defs/review/charts.py): an estimate and its interval
per category, n/a where there is not enough data, a dashed zero line, and every interval,
negative or positive, inside the plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from segment_cadence.defs.review import charts

SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["vip", "regular", "lapsed"]
ESTIMATES = [2.5, -1.2, None]
LOWS = [0.8, -3.4, None]
HIGHS = [4.1, 0.6, None]


def chart(**changes) -> ET.Element:
    arguments = {
        "title": "Lift by segment",
        "labels": LABELS,
        "estimates": ESTIMATES,
        "lows": LOWS,
        "highs": HIGHS,
        "alt": "Lift in percentage points with 95% intervals",
    } | changes
    root = ET.fromstring(charts.error_bars(**arguments))
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


def texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")]


def plot_top_and_bottom(root: ET.Element) -> tuple[float, float]:
    """The y of the plot's top and bottom, read from the axis path M{left},{top}V{bottom}."""
    axis = next(p for p in root.iter(f"{SVG}path") if p.get("class") is None)
    d = axis.get("d")
    top = float(d[1:].split("V")[0].split(",")[1])
    bottom = float(d.split("V")[1].split("H")[0])
    return top, bottom


def test_the_chart_is_one_well_formed_svg_titled_with_its_alt_text():
    root = chart()
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Lift in percentage points with 95% intervals"
    assert "Lift by segment" in texts(root)


def test_one_error_bar_per_category_with_data_and_n_a_for_one_without():
    root = chart()
    assert len(with_class(root, "error-bar")) == 2
    assert len(with_class(root, "estimate")) == 2
    assert [t.text for t in with_class(root, "no-data")] == ["n/a"]
    assert all(label in texts(root) for label in LABELS)


def test_a_dashed_zero_line_is_drawn_unless_turned_off():
    (zero,) = with_class(chart(), "zero-line")
    assert zero.get("stroke") == charts.AXIS and zero.get("stroke-dasharray")
    assert with_class(chart(zero_line=False), "zero-line") == []


def test_negative_and_positive_intervals_lie_inside_the_plot_each_end_at_its_value():
    root = chart()
    top, bottom = plot_top_and_bottom(root)
    (zero,) = with_class(root, "zero-line")
    zero_y = float(zero.get("y1"))
    positive, negative = with_class(root, "error-bar")
    for bar in (positive, negative):
        for end in ("y1", "y2"):
            assert top <= float(bar.get(end)) <= bottom
    # SVG's y grows downwards: the positive interval is wholly above zero, the negative one
    # ends below zero and crosses it.
    assert max(float(positive.get("y1")), float(positive.get("y2"))) < zero_y
    assert float(negative.get("y2")) > zero_y > float(negative.get("y1"))


def test_the_ticks_cover_zero_and_every_interval_end():
    root = chart(estimates=[5.0, 7.0], lows=[2.0, 3.0], highs=[9.0, 11.0], labels=["a", "b"])
    values = [float(t.replace(",", "")) for t in texts(root) if t[0].isdigit() or t[0] == "-"]
    assert min(values) <= 0 and max(values) >= 11


def test_all_estimates_missing_still_gives_an_axis_and_the_n_a_labels():
    root = chart(estimates=[None] * 3, lows=[None] * 3, highs=[None] * 3)
    assert with_class(root, "error-bar") == []
    assert [t.text for t in with_class(root, "no-data")] == ["n/a"] * 3
    assert plot_top_and_bottom(root)[0] < plot_top_and_bottom(root)[1]


def test_long_labels_are_turned_and_short_ones_lie_flat():
    def turned(root: ET.Element, label: str) -> bool:
        return (
            next(t for t in root.iter(f"{SVG}text") if t.text == label).get("transform") is not None
        )

    assert not turned(chart(), "regular")
    long = [f"campaign number {i} with a rather long descriptive name" for i in range(3)]
    assert turned(chart(labels=long), long[0])


def test_the_same_data_gives_the_same_bytes():
    arguments = ("t", LABELS, ESTIMATES, LOWS, HIGHS, "alt")
    assert charts.error_bars(*arguments) == charts.error_bars(*arguments)
