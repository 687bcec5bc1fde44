"""Core subscribes to nothing; higher apps put their subscriptions in their own handlers.py."""
