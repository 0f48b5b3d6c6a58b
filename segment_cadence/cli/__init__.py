"""The command line (`segment-cadence`): set-up, refresh, review and release, alerts and
governance commands. The commands live in cli/main.py and cli/governance.py; each calls the
plain modules of a room, and only the refresh commands start Dagster."""

from segment_cadence.cli.main import main

__all__ = ["main"]
