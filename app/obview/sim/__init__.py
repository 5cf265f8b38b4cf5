"""Market simulator and local WebSocket server (the demo venue and venue dialects)."""

from obview.sim.engine import SIM_SYMBOLS, SimMarket

__all__ = ["SIM_SYMBOLS", "SimMarket"]
