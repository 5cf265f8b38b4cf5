"""Theme and colormap files (TOML data in obview/themes/) loaded into Textual themes and
pre-made Rich styles for the panels."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rich.style import Style
from textual.theme import Theme

from obview.ui.colorscale import interpolate_stops

COLORMAP_LEVELS = 32
DEFAULT_THEME = "obview-dark"
DEFAULT_COLORMAP = "inferno"

_PANEL_KEYS = [
    "bid",
    "ask",
    "bid_bar",
    "ask_bar",
    "bid_text",
    "ask_text",
    "buy",
    "sell",
    "flash",
    "spread",
    "muted",
    "axis",
    "gap",
    "bbo_bid",
    "bbo_ask",
    "tier1",
    "tier2",
    "tier3",
    "live",
    "syncing",
    "stale",
    "down",
    "forced",
    "block",
]


def ansi_neutral(style: Style) -> bool:
    """Whether Textual's ANSI-to-truecolor line filter leaves ``style`` as it is: its colours
    are RGB (or unset) and it is not dim."""
    color, bgcolor = style.color, style.bgcolor
    return (
        not style.dim
        and (color is None or color.triplet is not None)
        and (bgcolor is None or bgcolor.triplet is not None)
    )


@dataclass(slots=True)
class PanelColors:
    """Colours the hot widgets paint with, plus the panel background and foreground."""

    name: str
    background: str
    foreground: str
    surface: str
    colors: dict[str, str]
    colormap: str = DEFAULT_COLORMAP
    _styles: dict[tuple, Style] = field(default_factory=dict)
    #: every style made so far is ``ansi_neutral`` (a theme of hex colours, no dim text)
    neutral: bool = True

    def __getitem__(self, key: str) -> str:
        return self.colors[key]

    def style(
        self, fg: str | None = None, bg: str | None = None, bold: bool = False, dim: bool = False
    ) -> Style:
        """A cached Style by colour key or hex (keys are looked up in the theme colours)."""
        k = (fg, bg, bold, dim)
        st = self._styles.get(k)
        if st is None:
            st = Style(
                color=self.colors.get(fg, fg) if fg else None,
                bgcolor=self.colors.get(bg, bg) if bg else None,
                bold=bold or None,
                dim=dim or None,
            )
            self._styles[k] = st
            if not ansi_neutral(st):
                self.neutral = False
        return st


@dataclass(slots=True)
class Colormap:
    """``levels`` colours per side; index 0 is "nothing resting". One-sided maps repeat."""

    name: str
    bid: list[str]
    ask: list[str]

    @property
    def tinted(self) -> bool:
        return self.bid != self.ask


def _themes_dir() -> Path:
    return Path(str(resources.files("obview") / "themes"))


def load_theme_files(directory: Path | None = None) -> tuple[list[Theme], dict[str, PanelColors]]:
    """Every ``*.toml`` with a [textual] table becomes a Textual Theme plus its PanelColors."""
    directory = directory or _themes_dir()
    themes: list[Theme] = []
    panels: dict[str, PanelColors] = {}
    for path in sorted(directory.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        tx = data.get("textual")
        if not isinstance(tx, dict) or "name" not in tx:
            continue
        ob = dict(data.get("obview", {}))
        cmap = ob.pop("colormap", DEFAULT_COLORMAP)
        missing = [k for k in _PANEL_KEYS if k not in ob]
        if missing:
            raise ValueError(f"theme {path.name}: missing colours {', '.join(missing)}")
        theme = Theme(**tx)
        themes.append(theme)
        panels[theme.name] = PanelColors(
            name=theme.name,
            background=tx.get("background", "#000000"),
            foreground=tx.get("foreground", "#ffffff"),
            surface=tx.get("surface", tx.get("background", "#000000")),
            colors=ob,
            colormap=cmap,
        )
    return themes, panels


def load_colormaps(
    directory: Path | None = None, levels: int = COLORMAP_LEVELS
) -> dict[str, Colormap]:
    path = (directory or _themes_dir()) / "colormaps.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    maps: dict[str, Colormap] = {}
    for name, spec in data.items():
        if "stops" in spec:
            ramp = interpolate_stops(spec["stops"], levels + 1)
            maps[name] = Colormap(name, ramp, ramp)
        elif "bid_stops" in spec and "ask_stops" in spec:
            maps[name] = Colormap(
                name,
                interpolate_stops(spec["bid_stops"], levels + 1),
                interpolate_stops(spec["ask_stops"], levels + 1),
            )
    return maps


def resolve_theme_name(name: str | None, available: list[str]) -> str:
    """Accept "dark", "obview-dark" or any registered Textual theme; fall back to the default."""
    if not name:
        return DEFAULT_THEME
    for cand in (name, f"obview-{name}"):
        if cand in available:
            return cand
    return DEFAULT_THEME
