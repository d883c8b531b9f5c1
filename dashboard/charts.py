"""Small server-rendered SVG charts (no JavaScript): stacked bars per day and a line of ratios.

Every piece of text that reaches the SVG (labels, legend names, titles) goes through ``markupsafe.escape``;
the only markup is what this module writes, so the result is returned as ``Markup`` for the template. Colours
are SVG presentation attributes, not inline styles, so the Content-Security-Policy (style-src 'self') allows them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

PALETTE = ("#1f5fbf", "#b3261e", "#1e7b34", "#8a5a00", "#6a3fb5", "#00838f", "#ad1457", "#5f6b76")
OTHER_COLOUR = "#b8c2cc"
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 190, 28, 44


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _tick(i: int, count: int, ticks: int) -> bool:
    """Whether position ``i`` of ``count`` gets an x label (about ``ticks`` of them, the last one included
    unless it would crowd the one before)."""
    step = max(1, count // ticks)
    if i == count - 1:
        return i % step == 0 or i % step >= step / 2
    return i % step == 0


def _frame(title: str, x_label: str, y_label: str, y_max: float, y_format: str, parts: list[str]) -> Markup:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        label = f"{value * 100:.0f}%" if y_format == "percent" else _num(value)
        out.append(f'<line x1="{LEFT}" y1="{_num(y)}" x2="{LEFT + plot_w}" y2="{_num(y)}" stroke="#dde1e6"/>')
        out.append(f'<text x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="11" fill="#5f6b76">'
                   f"{escape(label)}</text>")
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#5f6b76"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#5f6b76"/>')
    out.extend(parts)
    out.append(f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" '
               f'font-size="12" fill="#1d2329">{escape(x_label)}</text>')
    out.append(f'<text class="axis-label" x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" font-size="12" '
               f'fill="#1d2329" transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _legend(names: Sequence[str], colours: Sequence[str]) -> list[str]:
    out = []
    x = WIDTH - RIGHT + 14
    for i, (name, colour) in enumerate(zip(names, colours, strict=True)):
        y = TOP + i * 18
        short = name if len(name) <= 24 else name[:23] + "…"
        out.append(f'<rect x="{x}" y="{y}" width="11" height="11" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 10}" font-size="11" fill="#1d2329">{escape(short)}'
                   f"<title>{escape(name)}</title></text>")
    return out


def _month_day(day: date) -> str:
    return day.strftime("%m-%d")


def stacked_bars(days: Sequence[date], series: Sequence[tuple[str, Sequence[int]]], *, title: str,
                 y_label: str = "flags", x_label: str = "day (UTC)", other: str = "Other",
                 day_label: Callable[[date], str] = _month_day) -> Markup:
    """One bar per day, stacked by series (name, counts per day; the last one may be ``other``, drawn grey).
    ``day_label`` writes the x-axis labels (the caller passes a locale-aware one)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(counts[i] for _, counts in series) for i in range(len(days))]
    y_max = nice_max(max(totals, default=0))
    slot = plot_w / max(1, len(days))
    bar_w = max(1.0, slot * 0.75)
    colours = [OTHER_COLOUR if name == other else PALETTE[i % len(PALETTE)] for i, (name, _) in enumerate(series)]
    parts: list[str] = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = 0
        for (name, counts), colour in zip(series, colours, strict=True):
            n = counts[i]
            if not n:
                continue
            h = plot_h * n / y_max
            y = TOP + plot_h - plot_h * (base + n) / y_max
            parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" '
                         f'fill="{colour}"><title>{escape(f"{day.isoformat()} · {name}: {n}")}</title></rect>')
            base += n
        if _tick(i, len(days), 6):
            parts.append(f'<text x="{_num(x + bar_w / 2)}" y="{TOP + plot_h + 14}" text-anchor="middle" '
                         f'font-size="10" fill="#5f6b76">{escape(day_label(day))}</text>')
    parts.extend(_legend([name for name, _ in series], colours))
    return _frame(title, x_label, y_label, y_max, "count", parts)


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str, y_label: str, x_label: str) -> Markup:
    """Ratios between 0 and 1 (None: no data, a gap in the line) at labelled x positions."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points) - 1) if len(points) > 1 else 0
    parts: list[str] = []
    path: list[str] = []
    for i, (label, value) in enumerate(points):
        x = LEFT + (i * step if len(points) > 1 else plot_w / 2)
        if _tick(i, len(points), 8):
            parts.append(f'<text x="{_num(x)}" y="{TOP + plot_h + 14}" text-anchor="middle" font-size="10" '
                         f'fill="#5f6b76">{escape(label)}</text>')
        if value is None:
            if path:
                parts.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{PALETTE[0]}" '
                             'stroke-width="2"/>')
                path = []
            continue
        y = TOP + plot_h - plot_h * max(0.0, min(1.0, value))
        path.append(f"{_num(x)},{_num(y)}")
        parts.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{PALETTE[0]}">'
                     f'<title>{escape(f"{label}: {value * 100:.0f}%")}</title></circle>')
    if path:
        parts.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    return _frame(title, x_label, y_label, 1.0, "percent", parts)
