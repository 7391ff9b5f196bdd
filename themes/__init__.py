"""RecordKeeper's colour themes, the only place in the code base that names a colour.

Business states (ok, warning, danger, muted) are theme variables, so `.tcss` says
`color: $state-danger; text-style: $state-danger-text-style;` and each theme decides how that looks;
the text style carries the state where colour is unavailable (NO_COLOR, monochrome terminals).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from textual.theme import Theme

__all__ = [
    "DEFAULT_THEME",
    "HIGH_CONTRAST_THEME",
    "MONO_THEME",
    "STATE_VARIABLE_NAMES",
    "THEMES",
    "THEME_VARIABLE_DEFAULTS",
    "ansi_color_for",
    "no_color_requested",
    "register_themes",
    "sixteen_colours",
    "theme_for",
]

DEFAULT_THEME = "recordkeeper"
HIGH_CONTRAST_THEME = "recordkeeper-high-contrast"
MONO_THEME = "recordkeeper-mono"

STATE_VARIABLE_NAMES = (
    "state-ok",
    "state-warning",
    "state-danger",
    "state-muted",
    "state-ok-text-style",
    "state-warning-text-style",
    "state-danger-text-style",
    "state-muted-text-style",
)

# The same emphasis in every theme, so a state reads the same with or without colour.
_STATE_TEXT_STYLES = {
    "state-ok-text-style": "none",
    "state-warning-text-style": "bold",
    "state-danger-text-style": "bold reverse",
    "state-muted-text-style": "dim",
}

_RECORDKEEPER = Theme(
    name=DEFAULT_THEME,
    primary="#5B8DB8",
    secondary="#4A6C8C",
    accent="#7FB3A6",
    warning="#D9A441",
    error="#D0605E",
    success="#5FA57A",
    foreground="#DDE3EA",
    background="#1B2129",
    surface="#232B35",
    panel="#2C3642",
    dark=True,
    variables={
        "state-ok": "#6FBF8A",
        "state-warning": "#E0B252",
        "state-danger": "#E87470",
        "state-muted": "#8A96A3",
        **_STATE_TEXT_STYLES,
        "block-cursor-text-style": "bold",
        "footer-key-foreground": "#7FB3A6",
        "input-selection-background": "#5B8DB8 35%",
    },
)

_RECORDKEEPER_HIGH_CONTRAST = Theme(
    name=HIGH_CONTRAST_THEME,
    primary="#FFFF00",
    secondary="#00FFFF",
    accent="#FFFF00",
    warning="#FFB000",
    error="#FF5C5C",
    success="#00FF66",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    dark=True,
    text_alpha=1.0,
    variables={
        "state-ok": "#00FF66",
        "state-warning": "#FFD000",
        "state-danger": "#FF5C5C",
        "state-muted": "#C0C0C0",
        **_STATE_TEXT_STYLES,
        "text-muted": "#D0D0D0",
        "border": "#FFFFFF",
        "border-blurred": "#A0A0A0",
        "block-cursor-foreground": "#000000",
        "block-cursor-background": "#FFFF00",
        "block-cursor-text-style": "bold",
        "input-cursor-foreground": "#000000",
        "input-cursor-background": "#FFFF00",
        "input-selection-foreground": "#000000",
        "input-selection-background": "#00FFFF",
        "footer-key-foreground": "#FFFF00",
        "footer-description-foreground": "#FFFFFF",
    },
)

# Only the 16 ANSI colours, as Textual's own "ansi-dark" theme does: with `ansi=True` the
# terminal's palette is used as-is, which old 16-colour emulators render correctly.
_RECORDKEEPER_MONO = Theme(
    name=MONO_THEME,
    ansi=True,
    primary="ansi_blue",
    secondary="ansi_cyan",
    accent="ansi_bright_white",
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    foreground="ansi_default",
    background="ansi_default",
    surface="ansi_default",
    panel="ansi_default",
    boost="ansi_default",
    dark=True,
    variables={
        "state-ok": "ansi_green",
        "state-warning": "ansi_yellow",
        "state-danger": "ansi_red",
        "state-muted": "ansi_default",
        **_STATE_TEXT_STYLES,
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border": "ansi_default",
        "border-blurred": "ansi_bright_black",
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_white",
        "block-cursor-text-style": "bold reverse",
        "input-cursor-background": "ansi_black",
        "input-cursor-foreground": "ansi_bright_white",
        "input-cursor-text-style": "reverse",
        "input-selection-background": "ansi_bright_blue",
        "input-selection-foreground": "ansi_black",
        "screen-selection-background": "ansi_bright_blue",
        "screen-selection-foreground": "ansi_black",
        "footer-key-foreground": "ansi_bright_white",
    },
)

THEMES: dict[str, Theme] = {
    theme.name: theme
    for theme in (_RECORDKEEPER, _RECORDKEEPER_HIGH_CONTRAST, _RECORDKEEPER_MONO)
}

# For `App.get_theme_variable_defaults`: without these, a `.tcss` that says `$state-ok`
# fails to parse if a Textual built-in theme is ever active (e.g. via TEXTUAL_THEME).
THEME_VARIABLE_DEFAULTS: dict[str, str] = {
    name: _RECORDKEEPER.variables[name] for name in STATE_VARIABLE_NAMES
}


class _ThemeRegistry(Protocol):
    def register_theme(self, theme: Theme) -> None: ...


def register_themes(app: _ThemeRegistry) -> None:
    """Register every RecordKeeper theme with `app` (a `textual.app.App`)."""
    for theme in THEMES.values():
        app.register_theme(theme)


def theme_for(name: str, no_color: bool) -> str:
    """Return the theme to use: the mono theme if colour is off, else `name` if it is ours, else the default."""
    if no_color:
        return MONO_THEME
    if name in THEMES:
        return name
    return DEFAULT_THEME


def no_color_requested(environ: Mapping[str, str]) -> bool:
    """Return whether NO_COLOR is set, judged exactly as Textual 8.2.8 judges it (present, even if empty)."""
    return "NO_COLOR" in environ


def sixteen_colours(environ: Mapping[str, str]) -> bool:
    """Whether the terminal says it has only the 16 ANSI colours, judged as Rich (so Textual) judges it.

    Such a terminal gets the mono theme unless another theme was chosen: the default theme's shades
    would be rounded to the nearest of 16 colours, and some would disappear into the background.
    """
    if environ.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        return False
    if environ.get("TEXTUAL_COLOR_SYSTEM", "auto") not in ("auto", "standard"):
        return False
    term = environ.get("TERM", "").strip().lower()
    if not term:  # nothing said: keep the chosen theme
        return False
    return term.rpartition("-")[2] not in ("256color", "kitty", "direct", "truecolor")


def ansi_color_for(no_color: bool) -> bool | None:
    """Return the `ansi_color` argument for `App.__init__`.

    Textual picks its NO_COLOR filter in `App.__init__` from the theme active then; unless
    `ansi_color=True`, it picks `Monochrome`, which draws the mono theme black on black.
    """
    return True if no_color else None
