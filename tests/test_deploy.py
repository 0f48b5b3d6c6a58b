"""The multi-machine instance examples in deploy/ are accepted by Dagster itself.

`dagster instance info` runs against each example, with DAGSTER_HOME pointed at a copy of it
and a throwaway PostgreSQL on 127.0.0.1: Dagster loads the Postgres run, event log and
schedule storage (and creates its tables), the run launcher and the run coordinator, and
reports the schema. Needs the `deploy` extra (dagster-postgres, dagster-docker, dagster-k8s)
and PostgreSQL's server binaries; .ci/run installs both, so in CI nothing here is skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest
import yaml

from segment_cadence.platform import paths

EXAMPLES = sorted((paths.REPO_ROOT / "deploy").glob("dagster-*.yaml"))
IN_CI = bool(os.environ.get("CI"))
DEPLOY_MODULES = ("dagster_postgres", "dagster_docker", "dagster_k8s")


def unavailable(reason: str) -> None:
    """Outside CI, skip; in CI, whatever this needs must have been installed: fail."""
    if IN_CI:
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL server on 127.0.0.1 for this module, with a `dagster` database."""
    for module in DEPLOY_MODULES:
        try:
            __import__(module)
        except ImportError:
            unavailable(f"{module} is not installed (pip install -e '.[deploy]')")
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    # The server refuses to run as root: then it runs as the postgres user, in a directory
    # that user owns.
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="segment-cadence-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)

    try:
        run(initdb, "-D", str(data), "-U", "dagster", "--auth=trust", "--no-sync")
        run(
            pg_ctl,
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "server.log"),
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off",
            "start",
        )
        for _ in range(30):
            created = subprocess.run(
                [
                    *as_user,
                    str(Path(pg_ctl).resolve().with_name("createdb")),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "dagster",
                    "dagster",
                ],
                capture_output=True,
                text=True,
            )
            if created.returncode == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"could not create the database: {created.stderr}")
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "not-a-secret",  # trust authentication: any password
        }
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def instance_home(example: Path, tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding a copy of the example. The Kubernetes example loads the
    in-cluster configuration; outside a cluster the copy points at a kubeconfig instead."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    document = yaml.safe_load(example.read_text())
    launcher = document["run_launcher"]["config"]
    if document["run_launcher"]["class"] == "K8sRunLauncher":
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        launcher.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    (home / "dagster.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return home


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: not-a-secret}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: default}}]
current-context: test
"""


def test_there_are_examples_for_docker_and_kubernetes():
    assert {p.name for p in EXAMPLES} >= {"dagster-docker.yaml", "dagster-k8s.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_dagster_instance_info_accepts_the_example(example: Path, postgres, tmp_path):
    home = instance_home(example, tmp_path)
    env = {
        **os.environ,
        **postgres,
        "DAGSTER_HOME": str(home),
        "SEGMENT_CADENCE_IMAGE": "segment-cadence:test",
        "DAGSTER_DOCKER_NETWORK": "test",
        "SEGMENT_CADENCE_NAMESPACE": "default",
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "instance", "info"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for storage in ("PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"):
        assert storage in out
    launcher = yaml.safe_load(example.read_text())["run_launcher"]["class"]
    assert launcher in out
    assert "Storage schema state" in out
    assert "not-a-secret" not in out  # the password stays in the environment

    # `instance info` does not build the run coordinator; load it, and the launcher, as the
    # daemon does, and see that run monitoring is on (a dead run is failed, freeing the queue).
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dagster as dg; i = dg.DagsterInstance.get(); "
            "print(type(i.run_coordinator).__name__, type(i.run_launcher).__name__, "
            "i.run_monitoring_enabled)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["QueuedRunCoordinator", launcher, "True"]
