"""The Dagster code location: Definitions, jobs, schedules, partitions and resources."""
