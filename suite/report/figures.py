"""Figure sizes and font sizes that keep a plot legible in the report (issue 14).

A report page is 72rem (1152 CSS px) wide. The report saves each matplotlib figure as an SVG
whose size is the figure's (96 CSS px per inch): a figure up to ``COLUMN_WIDTH_IN`` inches wide
is shown at its own size, a wider one is scaled down to the column, its text with it. The
browser test (``tests/suite/report/test_browser.py``) fails a plot whose smallest text is under
``MIN_TEXT_PX`` CSS px as shown, whose text leaves the SVG, or whose non-zero bar is thinner than a
pixel. Plot functions size their figures with :func:`figure_size` (panels narrow when there are
many, the text keeps its size) and take their font sizes from ``FONT``.
"""
from __future__ import annotations

#: The report's content column in inches at 96 CSS px per inch (base.html.j2: max-width 72rem).
COLUMN_WIDTH_IN = 12.0
#: CSS px per inch (CSS defines 1in = 96px; an SVG's "pt" is 1/72 in).
PX_PER_IN = 96.0
#: The smallest text a plot may show, in CSS px (the browser test's threshold).
MIN_TEXT_PX = 9.0
#: Font sizes in points for the report's plots: at a figure's own size 8 pt is 10.7 CSS px.
#: A log axis's exponents are drawn at 70% of the tick size, so ticks stay at 9 pt or more.
FONT = {"tick": 9, "label": 9, "legend": 8, "title": 10, "annotation": 8}


def figure_size(panel_width: float, panel_height: float, *, columns: int = 1, rows: int = 1) -> tuple[float, float]:
    """The ``figsize`` (inches) of a grid of ``rows`` x ``columns`` panels, each ``panel_width`` x
    ``panel_height`` inches, with the width capped at the report's column (the panels narrow
    instead of the whole figure, text included, being scaled down on the page).

    Raises:
        ValueError: a size that is not positive or a count below 1.
    """
    if panel_width <= 0 or panel_height <= 0:
        raise ValueError(f"panel size must be positive, got {panel_width} x {panel_height} inches")
    if columns < 1 or rows < 1:
        raise ValueError(f"a figure needs at least one row and one column of panels, got {rows} x {columns}")
    return min(COLUMN_WIDTH_IN, panel_width * columns), panel_height * rows


def shown_text_px(fontsize_pt: float, figure_width_in: float) -> float:
    """The size in CSS px at which text of ``fontsize_pt`` points is shown on a report page, for a
    figure ``figure_width_in`` inches wide (scaled down when wider than the column).

    Raises:
        ValueError: a width that is not positive.
    """
    if figure_width_in <= 0:
        raise ValueError(f"figure width must be positive, got {figure_width_in} inches")
    return fontsize_pt * PX_PER_IN / 72.0 * min(1.0, COLUMN_WIDTH_IN / figure_width_in)


__all__ = ["COLUMN_WIDTH_IN", "FONT", "MIN_TEXT_PX", "PX_PER_IN", "figure_size", "shown_text_px"]
