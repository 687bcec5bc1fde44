"""PostgreSQL with a cheaper per-request health check (see base.py)."""
