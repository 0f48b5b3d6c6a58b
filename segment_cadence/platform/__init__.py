"""Shared pieces every room uses: months and paths, the warehouse and its writer lock,
process bookkeeping and crash points (plain), and Dagster's resources, partitions, jobs,
schedules and the dead-run reaper (thin Dagster)."""
