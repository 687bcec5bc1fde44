"""Models of the deployments app (see DESIGN.md)."""
