"""Thin Dagster wrappers over segment_cadence: each asset calls plain functions and reports."""
