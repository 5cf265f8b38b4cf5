"""Making network-provided text safe to show in a terminal."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size


def safe(text: object, maxlen: int = 160) -> str:
    """Printable one-line text: control characters (ESC, CR, BEL ...) and other characters a
    terminal would not print as themselves (bidi overrides, zero-width marks, line separators)
    become spaces, and long text is cut with an ellipsis. Rendering still goes through
    ``rich.text.Text`` so that ``[bold]`` stays literal; this only stops escape sequences."""
    s = str(text)
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() else " " for ch in s)
    if len(s) > maxlen:
        s = s[: maxlen - 1] + "\u2026"
    return s


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal cells, with an ellipsis in the last cell when cut."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return set_cell_size(text, max(0, width))
    return set_cell_size(text, width - 1).rstrip() + "\u2026"


def shown(text: object, maxlen: int = 40) -> str:
    """``repr`` of a name the user or the network gave, cut to ``maxlen`` characters: an error
    line stays one line (a 100 kB symbol was echoed whole)."""
    s = str(text)
    return repr(s[:maxlen]) + ("\u2026" if len(s) > maxlen else "")
