"""The rooms, one per domain. Each holds its plain logic (no Dagster) and its thin Dagster
wrappers (assets.py, sensors.py) side by side; segment_cadence/definitions.py loads them."""
