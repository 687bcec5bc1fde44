"""Models of the monitoring app (see DESIGN.md)."""
