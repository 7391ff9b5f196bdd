"""A form input that moves on with Enter, and focus moves that keep up with type-ahead."""

from __future__ import annotations

from textual import events
from textual.screen import Screen
from textual.widgets import Input, Select

MOVE_KEYS = {"tab": "next", "shift+tab": "previous"}


class FieldInput(Input):
    """An Input whose Enter moves to the next field (unless `enter_moves_on` is False)."""

    def __init__(self, *args, enter_moves_on: bool = True, **kwargs) -> None:
        kwargs.setdefault("compact", True)
        super().__init__(*args, **kwargs)
        self.enter_moves_on = enter_moves_on


def move_focus_now(screen: Screen, event: events.Key) -> bool:
    """Move focus for Tab/Shift-Tab/Enter-in-a-field before later keys are dispatched.

    Textual hands each key to the focused widget's own queue, so a focus change made by a
    binding lands after keys typed ahead of it; clerks type ahead, so the app moves focus here.
    """
    focused = screen.focused
    direction = MOVE_KEYS.get(event.key)
    if direction is None and event.key == "enter" and isinstance(focused, FieldInput) and focused.enter_moves_on:
        focused.post_message(Input.Submitted(focused, focused.value))
        direction = "next"
    if direction is None or not isinstance(focused, (Input, Select)):  # a Select in a form is typed past too
        return False
    if direction == "next":
        screen.focus_next()
    else:
        screen.focus_previous()
    return True
