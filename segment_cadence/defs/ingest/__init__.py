"""Ingest: raw files and tables into the warehouse, typed and checked. The column mapping is
written in config/sources.yaml, run by ingest.py (quarantine rules) and checked by the
quarantine-rate asset checks in assets.py."""
