"""Sensors: thin wrappers that watch runs and tables and hand findings to plain modules."""
