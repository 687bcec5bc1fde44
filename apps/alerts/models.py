"""Models of the alerts app (see DESIGN.md)."""
