"""obview: a terminal order-book visualizer for crypto venues."""

__version__ = "0.1.0"
