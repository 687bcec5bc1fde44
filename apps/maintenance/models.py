"""Models of the maintenance app (see DESIGN.md)."""
