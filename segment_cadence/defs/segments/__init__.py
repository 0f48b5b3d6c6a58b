"""Segments: the dbt models (dbt_assets.py) run the compiled rules through
dbt_project/macros/segment_case.sql, churn.py fits the BG/NBD model they score with, gate.py
checks the month before publish.py makes it visible."""
