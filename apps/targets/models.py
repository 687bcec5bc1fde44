"""Models of the targets app (see DESIGN.md)."""
