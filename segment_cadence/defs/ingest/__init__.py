"""Ingest: raw files landed in the warehouse, then typed and checked. The column mapping is
written in config/sources.yaml and read by ingest.py (the front door: files, mapping, change
detection, landing); the quarantine rules are dbt models (dbt_project/models/ingest) that
ingest.py builds; the quarantine-rate asset checks are in assets.py."""
