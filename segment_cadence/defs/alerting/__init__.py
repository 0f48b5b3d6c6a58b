"""Alerting: alerts.py keeps the lifecycle of health breaches (open, escalate, silence,
resolve), alert_tick.py runs one pass, slack.py and outbox.py deliver; sensors.py runs the
ticks and the refresh-failure notice."""
