"""Entry point for `dagster dev -f orchestration/definitions.py`: the code location itself is
segment_cadence.definitions (workspace.yaml and pyproject's [tool.dagster] load it by module)."""

from segment_cadence.definitions import defs

__all__ = ["defs"]
