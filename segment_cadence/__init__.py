"""segment-cadence: customer segments refreshed on a monthly and quarterly cadence.

definitions.py is the Dagster code location; defs/<room>/ holds each domain's plain logic and
its thin Dagster wrappers; platform/ the shared pieces; cli/ the command line; example/ the
example-data generator.
"""
