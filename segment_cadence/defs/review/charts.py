"""The review pack's charts as SVG, written directly rather than through a plotting library.

The pack draws four kinds: lines (one series per segment over the months), bars (one value
per label), a heatmap (the migration matrix with its counts) and error bars (an estimated
difference per label with its interval). Drawing them with matplotlib cost every monthly
refresh a third of a second of import and about a tenth of a second a chart, for pictures
this simple. Text stays text, so the pack is searchable and prints sharply, and the markup
depends only on the data, so the same pack gives the same bytes. Text widths are estimated
(an average glyph of 0.6 em), which is all the layout needs: margins that fit the labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

# Colour-blind-safe, distinct in print (Okabe and Ito's eight, then two greys).
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
    "#999999",
    "#666666",
)
BAR_COLOUR = "#4c72b0"
HEAT_LOW, HEAT_HIGH = (247, 251, 255), (8, 48, 107)  # white-blue to navy
FONT = 11
TITLE_FONT = 13
SMALL_FONT = 9
AXIS = "#444444"
GRID = "#e5e5e5"
WIDTH = 760
PLOT_HEIGHT = 220
ROTATION = 40  # degrees, for month labels under a line or bar chart


def text_width(text: str, size: float = FONT) -> float:
    """An estimate of the rendered width of `text` in a sans-serif font of `size` px."""
    return 0.6 * size * len(text)


def nice_step(span: float, most: int = 6, whole: bool = False) -> float:
    """The smallest of 1, 2, 2.5 and 5 times a power of ten (not 2.5, and at least 1, when
    the values are `whole` numbers) that cuts `span` into at most `most` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / most
    if whole and raw <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    multiples = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    return next(m * power for m in multiples if m * power >= raw * (1 - 1e-12))


def ticks(low: float, high: float, most: int = 6, whole: bool = False) -> list[float]:
    """Evenly spaced round values from at or below `low` to at or above `high`."""
    if high < low:
        low, high = high, low
    if high - low < 1e-9 * max(1.0, abs(low)):  # one value (or all alike): a unit around it
        high = low + 1
    step = nice_step(high - low, most, whole)
    first = math.floor(low / step + 1e-9) * step
    count = max(1, math.ceil((high - first) / step - 1e-9))
    places = decimals(step)
    # The tolerance above forgives float noise in step units; where `high` sits just above a
    # tick of a very wide range (0.00015 over 600,000), it would leave `high` uncovered.
    while round(first + count * step, places) < high - abs(high) * 1e-12:
        count += 1
    return [round(first + i * step, places) for i in range(count + 1)]


def decimals(step: float) -> int:
    """The decimals that write every multiple of a round `step` exactly: those of its power
    of ten, and one more for 2.5. Rounding ticks to a fixed number of places instead made
    a tiny span's ticks uneven (3e-10, 5e-10, 8e-10 for a step of 2.5e-10)."""
    power = math.floor(math.log10(step) + 1e-9)
    mantissa = step / 10**power
    extra = 0 if math.isclose(mantissa, round(mantissa), rel_tol=1e-9) else 1
    return max(0, extra - power)


def tick_label(value: float, step: float) -> str:
    """A tick's value with the decimals its step needs, and thousands separated."""
    return f"{value:,.{decimals(step)}f}"


@dataclass(frozen=True)
class Axes:
    """The plot area inside the picture, and the value range its height shows."""

    left: float
    top: float
    width: float
    height: float
    values: list[float]  # the y ticks, lowest first

    def y(self, value: float) -> float:
        low, high = self.values[0], self.values[-1]
        return self.top + self.height * (1 - (value - low) / (high - low))

    def x(self, index: int, count: int) -> float:
        """The centre of the index-th of `count` evenly spaced categories."""
        return self.left + self.width * (index + 0.5) / count


def _text(x: float, y: float, content: str, size: float = FONT, **attributes: str) -> str:
    extra = "".join(f" {name.replace('_', '-')}={quoteattr(v)}" for name, v in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}"{extra}>{escape(content)}</text>'


def _svg(width: float, height: float, title: str, alt: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label={quoteattr(alt)} '
        f'font-family="Helvetica, Arial, sans-serif">\n'
        f"<title>{escape(alt)}</title>\n"
        + _text(0, TITLE_FONT + 2, title, TITLE_FONT, font_weight="bold")
        + "\n"
        + "\n".join(body)
        + "\n</svg>\n"
    )


def _category_axes(labels: Sequence[str], values: list[float], right: float) -> tuple[Axes, float]:
    """Axes for categories along x (labels turned by ROTATION) and values up y, and the
    picture's height; the margins fit the y tick labels, the turned labels and `right`."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    whole = all(float(v).is_integer() for v in finite)
    y_ticks = ticks(min([0.0, *finite]), max([0.0, *finite]), whole=whole)
    step = y_ticks[1] - y_ticks[0]
    left = 8 + max(text_width(tick_label(v, step)) for v in y_ticks)
    turn = math.sin(math.radians(ROTATION))
    bottom = 10 + max((text_width(label) for label in labels), default=0) * turn + FONT
    top = TITLE_FONT + 16
    axes = Axes(left, top, WIDTH - left - right, PLOT_HEIGHT, y_ticks)
    return axes, top + PLOT_HEIGHT + bottom


def _frame(axes: Axes, labels: Sequence[str]) -> list[str]:
    """Grid lines and y tick labels, the two axis lines, and the turned category labels."""
    step = axes.values[1] - axes.values[0]
    body = []
    for value in axes.values:
        y = axes.y(value)
        body.append(
            f'<line x1="{axes.left:.1f}" y1="{y:.1f}" x2="{axes.left + axes.width:.1f}" '
            f'y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(axes.left - 5, y + FONT / 3, tick_label(value, step), text_anchor="end"))
    bottom = axes.top + axes.height
    body.append(
        f'<path d="M{axes.left:.1f},{axes.top:.1f}V{bottom:.1f}H{axes.left + axes.width:.1f}" '
        f'fill="none" stroke="{AXIS}"/>'
    )
    for i, label in enumerate(labels):
        x = axes.x(i, len(labels))
        y = bottom + FONT + 2
        body.append(
            _text(x, y, label, text_anchor="end", transform=f"rotate(-{ROTATION} {x:.1f} {y:.1f})")
        )
    return body


def lines(title: str, labels: Sequence[str], series: dict[str, Sequence], alt: str) -> str:
    """One line per series over the labels, a marker at each value; a missing value (None)
    breaks the line there. The legend, right of the plot, names the series in order."""
    legend_width = 24 + max((text_width(name, SMALL_FONT) for name in series), default=0)
    values = [v for vs in series.values() for v in vs if v is not None]
    axes, height = _category_axes(labels, values, right=legend_width + 10)
    height = max(height, axes.top + 14 * len(series) + 10)
    body = _frame(axes, labels)
    for n, (name, points) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(points):
            if value is None or not math.isfinite(value):
                runs.append([])
                continue
            runs[-1].append((axes.x(i, len(labels)), axes.y(value)))
        for run in (r for r in runs if r):
            coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.append(
                f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
                f'stroke-width="1.6"><title>{escape(name)}</title></polyline>'
            )
            body.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{colour}"/>' for x, y in run
            )
        key_x = axes.left + axes.width + 12
        key_y = axes.top + 14 * n + 6
        body.append(
            f'<line x1="{key_x:.1f}" y1="{key_y:.1f}" x2="{key_x + 14:.1f}" y2="{key_y:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        body.append(_text(key_x + 18, key_y + SMALL_FONT / 3, name, SMALL_FONT))
    return _svg(WIDTH, height, title, alt, body)


def bars(title: str, labels: Sequence[str], values: Sequence[float], alt: str) -> str:
    """One bar per label, its value in its tooltip."""
    axes, height = _category_axes(labels, list(values), right=10)
    body = _frame(axes, labels)
    bar = min(axes.width / max(len(labels), 1) * 0.8, 56.0)  # a few bars stay bars
    zero = axes.y(0)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        top = axes.y(value)
        x = axes.x(i, len(labels)) - bar / 2
        body.append(
            f'<rect x="{x:.1f}" y="{min(top, zero):.1f}" width="{bar:.1f}" '
            f'height="{abs(zero - top):.1f}" fill="{BAR_COLOUR}">'
            f"<title>{escape(f'{label}: {value:,}')}</title></rect>"
        )
    return _svg(WIDTH, height, title, alt, body)


def heat_colour(value: float, peak: float) -> str:
    """The cell colour of `value` on a scale from white-blue (0) to navy (`peak`)."""
    share = 0.0 if peak <= 0 else max(0.0, min(1.0, value / peak))
    red, green, blue = (
        round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True)
    )
    return f"#{red:02x}{green:02x}{blue:02x}"


def heatmap(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    matrix: Sequence[Sequence[float]],
    alt: str,
) -> str:
    """A cell per (row, column), shaded by its count, the count written in cells that are
    not zero (white on the darker half); the scale's ends beside it."""
    cell_w, cell_h = 46.0, 24.0
    left = 10 + max((text_width(r) for r in rows), default=0)
    top = TITLE_FONT + 16
    turn = math.sin(math.radians(ROTATION))
    grid_bottom = top + cell_h * len(rows)
    height = grid_bottom + 14 + max((text_width(c) for c in columns), default=0) * turn + FONT
    scale_x = left + cell_w * len(columns) + 16
    peak = max((max(r) for r in matrix if r), default=0) or 1
    width = scale_x + 20 + text_width(f"{peak:,}", SMALL_FONT) + 10
    width = max(width, text_width(title, TITLE_FONT) + 10)
    body = []
    for i, (row, counts) in enumerate(zip(rows, matrix, strict=True)):
        y = top + cell_h * i
        body.append(_text(left - 6, y + cell_h / 2 + FONT / 3, row, text_anchor="end"))
        for j, value in enumerate(counts):
            x = left + cell_w * j
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" '
                f'fill="{heat_colour(value, peak)}" stroke="#ffffff">'
                f"<title>{escape(f'{row} to {columns[j]}: {value:,}')}</title></rect>"
            )
            if value:
                colour = "#ffffff" if value > peak / 2 else "#000000"
                body.append(
                    _text(
                        x + cell_w / 2,
                        y + cell_h / 2 + SMALL_FONT / 3,
                        f"{value:,}",
                        SMALL_FONT,
                        text_anchor="middle",
                        fill=colour,
                    )
                )
    for j, column in enumerate(columns):
        x = left + cell_w * (j + 0.5)
        y = grid_bottom + FONT + 2
        body.append(
            _text(x, y, column, text_anchor="end", transform=f"rotate(-{ROTATION} {x:.1f} {y:.1f})")
        )
    body.append(
        '<defs><linearGradient id="heat-scale" x1="0" y1="1" x2="0" y2="0">'
        f'<stop offset="0" stop-color="{heat_colour(0, 1)}"/>'
        f'<stop offset="1" stop-color="{heat_colour(1, 1)}"/></linearGradient></defs>'
    )
    body.append(
        f'<rect x="{scale_x:.1f}" y="{top:.1f}" width="12" height="{grid_bottom - top:.1f}" '
        f'fill="url(#heat-scale)" stroke="{AXIS}" stroke-width="0.5"/>'
    )
    body.append(_text(scale_x + 16, top + SMALL_FONT, f"{peak:,}", SMALL_FONT))
    body.append(_text(scale_x + 16, grid_bottom, "0", SMALL_FONT))
    return _svg(width, height, title, alt, body)


def error_bars(
    title: str,
    labels: Sequence[str],
    estimates: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    alt: str,
    zero_line: bool = True,
) -> str:
    """A dot per label at its estimate, with a capped vertical bar from its low to its high
    (a difference, such as a lift, so either end may be negative), and a dashed line at 0.
    The y ticks cover 0 and every end. A label whose estimate is None (not enough data)
    keeps its place on the axis and is marked "n/a" at 0 instead. The labels lie flat when
    they fit their slots and are turned by ROTATION otherwise, as under the other charts."""
    count = len(labels)
    rows = list(zip(labels, estimates, lows, highs, strict=True))

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    values = [v for _, *row in rows for v in map(finite, row) if v is not None]
    axes, height = _category_axes(labels, values, right=10)
    slot = axes.width / max(count, 1)
    flat = all(text_width(label) <= slot - 4 for label in labels)
    body = _frame(axes, [] if flat else labels)
    bottom = axes.top + axes.height
    if flat:
        height = bottom + 10 + FONT
        body.extend(
            _text(axes.x(i, count), bottom + FONT + 2, label, text_anchor="middle")
            for i, label in enumerate(labels)
        )
    low_tick, high_tick = axes.values[0], axes.values[-1]
    zero = axes.y(0) if low_tick <= 0 <= high_tick else None
    if zero_line and zero is not None:
        body.append(
            f'<line class="zero-line" x1="{axes.left:.1f}" y1="{zero:.1f}" '
            f'x2="{axes.left + axes.width:.1f}" y2="{zero:.1f}" stroke="{AXIS}" '
            f'stroke-dasharray="4 3"/>'
        )
    places = decimals(axes.values[1] - axes.values[0]) + 1  # one finer than the ticks
    cap = min(slot * 0.3, 12.0) / 2
    for i, (label, estimate, low, high) in enumerate(rows):
        x = axes.x(i, count)
        estimate, low, high = finite(estimate), finite(low), finite(high)
        if estimate is None:
            level = axes.y(0) if zero is None else zero
            # Above the zero level, unless that would leave the plot.
            y = level - 4 if level - axes.top > SMALL_FONT + 4 else level + SMALL_FONT + 4
            body.append(
                _text(
                    x, y, "n/a", SMALL_FONT, text_anchor="middle", fill=AXIS, **{"class": "no-data"}
                )
            )
            continue
        tip = f"{label}: {estimate:,.{places}f}"
        if low is not None and high is not None:
            low, high = min(low, high), max(low, high)
            y_low, y_high = axes.y(low), axes.y(high)
            tip += f" ({low:,.{places}f} to {high:,.{places}f})"
            body.append(
                f'<line class="error-bar" x1="{x:.1f}" y1="{y_high:.1f}" x2="{x:.1f}" '
                f'y2="{y_low:.1f}" stroke="{BAR_COLOUR}" stroke-width="1.4"/>'
            )
            body.append(
                f'<path class="error-cap" d="M{x - cap:.1f},{y_high:.1f}H{x + cap:.1f}'
                f'M{x - cap:.1f},{y_low:.1f}H{x + cap:.1f}" fill="none" '
                f'stroke="{BAR_COLOUR}" stroke-width="1.4"/>'
            )
        body.append(
            f'<circle class="estimate" cx="{x:.1f}" cy="{axes.y(estimate):.1f}" r="3.2" '
            f'fill="{BAR_COLOUR}"><title>{escape(tip)}</title></circle>'
        )
    return _svg(WIDTH, height, title, alt, body)
