"""Models of the tickets app (see DESIGN.md)."""
