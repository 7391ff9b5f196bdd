"""Find text that does not fit on the screen as drawn: labels, key hints, buttons and messages cut off.

Widths are terminal cells (Textual measures with `rich.cells.cell_len`, which counts a Chinese
character as two), taken from what Textual itself would draw; a widget is measured where it is
actually on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.geometry import Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Label, Static
from textual.widgets._footer import FooterKey

TEXT_WIDGETS = (Label, Static, Button, FooterKey)


@dataclass(frozen=True)
class CutText:
    """One piece of text that is not fully shown."""

    widget: str
    text: str
    problem: str

    def __str__(self) -> str:
        return f"{self.widget}: {self.problem}: {self.text!r}"


def _describe(widget: Widget) -> str:
    name = type(widget).__name__
    return f"{name}#{widget.id}" if widget.id else f"{name}({' '.join(sorted(widget.classes))})"


def _plain(widget: Widget) -> str:
    if isinstance(widget, FooterKey):
        return f"{widget.key_display} {widget.description}"
    visual = widget._render()
    plain = getattr(visual, "plain", None)
    if plain is None:
        plain = str(getattr(widget, "label", "") or "")
    return str(plain)


def _clipped_by_container(widget: Widget) -> str | None:
    """The container that cuts `widget` off (it does not fit inside it and the container cannot scroll), if any."""
    region = widget.region
    vertical_ok = horizontal_ok = False  # covered by a container that scrolls in that direction
    for ancestor in widget.ancestors:
        if isinstance(ancestor, Screen) or not isinstance(ancestor, Widget):
            return None
        outer = ancestor.region
        if not outer:
            continue
        if not vertical_ok and (region.y < outer.y or region.bottom > outer.bottom):
            return f"taller than its container {_describe(ancestor)} ({region.height} > {outer.height} lines)"
        if not horizontal_ok and (region.x < outer.x or region.right > outer.right):
            return f"wider than its container {_describe(ancestor)} ({region.width} > {outer.width} cells)"
        vertical_ok = vertical_ok or ancestor.allow_vertical_scroll
        horizontal_ok = horizontal_ok or ancestor.allow_horizontal_scroll
        if vertical_ok and horizontal_ok:
            return None
    return None


def _scrolls(widget: Widget, vertical: bool) -> bool:
    """Whether an ancestor of `widget` (below the screen) can scroll it into view in that direction."""
    for ancestor in widget.ancestors:
        if isinstance(ancestor, Screen):
            return False
        if not isinstance(ancestor, Widget):
            continue
        if vertical and ancestor.allow_vertical_scroll:
            return True
        if not vertical and ancestor.allow_horizontal_scroll:
            return True
    return False


def cut_text(screen: Screen) -> list[CutText]:
    """Every text widget on `screen` whose text is cut off, or that is partly outside the screen."""
    problems: list[CutText] = []
    screen_region = Region(0, 0, screen.size.width, screen.size.height)
    visible = screen._compositor.visible_widgets
    for widget, (region, clip) in visible.items():
        if not isinstance(widget, TEXT_WIDGETS) or not widget.display or not widget.visible:
            continue
        text = _plain(widget)
        if not text.strip():
            continue
        name = _describe(widget)
        shown = region.intersection(clip).intersection(screen_region)
        if shown != region:
            cut_horizontally = shown.width < region.width and not _scrolls(widget, vertical=False)
            cut_vertically = shown.height < region.height and not _scrolls(widget, vertical=True)
            if cut_horizontally or cut_vertically:
                problems.append(CutText(name, text, f"partly outside the screen ({region} shown as {shown})"))
                continue
        container_cut = _clipped_by_container(widget)
        if container_cut:
            problems.append(CutText(name, text, container_cut))
            continue
        content = widget.content_region
        if content.width <= 0 or content.height <= 0:
            problems.append(CutText(name, text, "no room at all"))
            continue
        styles = widget.styles
        visual = widget._render()
        if styles.text_wrap == "nowrap" or isinstance(widget, Button):
            width = visual.get_optimal_width(styles, 10_000)
            if width > content.width:
                problems.append(CutText(name, text, f"needs {width} cells, has {content.width}"))
                continue
        height = visual.get_height(styles, content.width)
        if height > content.height:
            problems.append(CutText(name, text, f"needs {height} lines at width {content.width}, has {content.height}"))
    return problems


def footer_keys_all_shown(screen: Screen) -> list[CutText]:
    """Key hints of the footer that are not on screen at all (pushed past the right edge)."""
    visible = screen._compositor.visible_widgets
    missing = []
    for key in screen.query(FooterKey):
        if key.display and key not in visible:
            missing.append(CutText(_describe(key), f"{key.key_display} {key.description}", "not on screen"))
    return missing
