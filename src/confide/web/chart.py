"""A small line chart as SVG markup, drawn on the server (no script, no inline style).

Each series has its own colour, dash pattern and marker shape so it reads without colour; the
chart carries a title and description for screen readers, and every page that shows one also
shows the same numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 48
# NHS palette: blue, purple, dark green, dark red. Dash patterns tell them apart without colour.
STYLES = (
    ("#005eb8", ""),
    ("#330072", "8 4"),
    ("#007f3b", "2 3"),
    ("#8a1538", "10 3 2 3"),
)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int | None]  # None: suppressed (drawn as a gap)


def _nice_top(peak: int) -> int:
    """A round axis maximum at or above ``peak``."""
    if peak <= 10:
        return 10
    step = 10 ** (len(str(peak)) - 1)
    return ((peak + step - 1) // step) * step


def line_chart(
    title: str, description: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """SVG for ``series`` over ``labels`` (months), with axes, gridlines and a legend."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((v for s in series for v in s.values if v is not None), default=0)
    top = _nice_top(peak)
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n)

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [
        f'<svg class="confide-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    ticks = 5 if top % 5 == 0 else 4
    for k in range(ticks + 1):
        value = top * k // ticks
        gy = y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}" '
            'stroke="#d8dde0" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{gy + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#212b32">{value}</text>'
        )
    every = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" '
                f'font-size="12" fill="#212b32">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'stroke="#4c6272" stroke-width="1"/>'
    )
    for index, s in enumerate(series):
        colour, dash = STYLES[index % len(STYLES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        run: list[str] = []
        runs: list[list[str]] = [run]
        for i, v in enumerate(s.values):
            if v is None:
                run = []
                runs.append(run)
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
        for points in runs:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="3"{dash_attr}/>'
                )
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(_marker(index, x(i), y(v), colour))
    legend_y = HEIGHT - 12
    slot = (WIDTH - LEFT) / max(len(series), 1)
    for index, s in enumerate(series):
        colour, dash = STYLES[index % len(STYLES)]
        lx = LEFT + index * slot
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{lx:.1f}" x2="{lx + 24:.1f}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="3"{dash_attr}/>'
        )
        parts.append(_marker(index, lx + 12, legend_y - 4, colour))
        parts.append(
            f'<text x="{lx + 30:.1f}" y="{legend_y}" font-size="12" fill="#212b32">'
            f"{escape(s.name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _marker(index: int, cx: float, cy: float, colour: str) -> str:
    """A circle, square, triangle or diamond: a second cue besides colour."""
    shape = index % 4
    if shape == 0:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}"/>'
    if shape == 1:
        return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if shape == 2:
        return (
            f'<polygon points="{cx:.1f},{cy - 5:.1f} {cx + 5:.1f},{cy + 4:.1f} '
            f'{cx - 5:.1f},{cy + 4:.1f}" fill="{colour}"/>'
        )
    return (
        f'<polygon points="{cx:.1f},{cy - 5:.1f} {cx + 5:.1f},{cy:.1f} {cx:.1f},{cy + 5:.1f} '
        f'{cx - 5:.1f},{cy:.1f}" fill="{colour}"/>'
    )
