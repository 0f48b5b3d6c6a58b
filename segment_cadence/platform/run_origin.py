"""Where a run started outside the webserver says it comes from: the code location that
workspace.yaml declares, as the runs the UI launches do.

A job's page in the UI lists the runs of that job whose repository label (the hidden
`.dagster/repository` tag, `__repository__@segment_cadence`) names its code location. A run
started by `JobDefinition.execute_in_process` (the CLI's refreshes) has no origin and no
label, so without this it shows in the Runs list but not on its job's page, and cannot be
re-executed from there. The origin is read from workspace.yaml the same way the webserver
reads it, without starting the code location.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from dagster._core.workspace.load import location_origins_from_yaml_paths

from segment_cadence.platform import paths

WORKSPACE_FILE = paths.REPO_ROOT / "workspace.yaml"
CODE_LOCATION = "segment_cadence"


def remote_job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the webserver gives a run of this job launched from its page."""
    location = next(
        origin
        for origin in location_origins_from_yaml_paths([str(WORKSPACE_FILE)])
        if origin.location_name == CODE_LOCATION
    )
    return RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME).get_job_origin(job_name)


def origin_tags(origin: RemoteJobOrigin) -> dict[str, str]:
    """The repository label that puts the run on its job's page from its first event."""
    return {REPOSITORY_LABEL_TAG: origin.repository_origin.get_label()}


def record_origin(instance: dg.DagsterInstance, run_id: str, origin: RemoteJobOrigin) -> None:
    """Give a finished run its job's remote origin, as `dagster run migrate-repository` does
    for runs moved between code locations (written once the run is over, so no status update
    of the run races with it)."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.remote_job_origin != origin:
        instance.run_storage.replace_job_origin(run, origin)
