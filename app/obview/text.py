"""Making network-provided text safe to show in a terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: object, maxlen: int = 160) -> str:
    """Printable one-line text: control characters (ESC, CR, BEL ...) become U+FFFD-free
    spaces, and long text is cut with an ellipsis. Rendering still goes through
    ``rich.text.Text`` so that ``[bold]`` stays literal; this only stops escape sequences."""
    s = _CONTROL.sub(" ", str(text))
    if len(s) > maxlen:
        s = s[: maxlen - 1] + "\u2026"
    return s
