"""Segment health: health.py measures each published month, thresholds.py evaluates the
bounds written in config/thresholds.yaml; breaches go on to the alerting room."""
