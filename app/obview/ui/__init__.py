"""The Textual app: heatmap, ladder, tape, stats bar and venue strip."""
