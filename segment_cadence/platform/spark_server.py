"""A local Spark SQL endpoint: Spark's Thrift server (HiveThriftServer2) in local mode.

On Spark the monthly job has more than one client: dbt, which dagster-dbt starts as a
process of its own for every invocation, and the Python assets. Each embedding its own
Spark would mean several JVMs on one embedded Derby metastore, which Derby refuses. So, as
in a real deployment, there is one Spark SQL endpoint and every client talks to it over
Thrift: dbt-spark's `thrift` method and segment_cadence/platform/spark_warehouse.py. A
cluster provides that endpoint itself; for development, tests and `make test-spark` this
module starts one on 127.0.0.1 from the pip-installed pyspark (its jars include the Thrift
server), with the Derby metastore, the warehouse directory and the log under one directory.

    python -m segment_cadence.platform.spark_server            # until Ctrl-C; prints the
                                                               # variables to point at it
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from segment_cadence.platform import paths

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 10000  # HiveServer2's usual port; the profile's default too
LOG_NAME = "thriftserver.log"

# The server's own output is INFO by default, a few MB per run. Warnings and errors are
# kept, and the Thrift server's start line, which says the port it listens on.
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.thrift.name = org.apache.spark.sql.hive.thriftserver
logger.thrift.level = info
logger.hive.name = org.apache.hive.service
logger.hive.level = info
"""


class SparkServerError(RuntimeError):
    """The local Spark endpoint could not be started (no Java, no pyspark, or it exited or
    did not listen in time). The message is one line, with the log file to read."""


@dataclass(frozen=True)
class SparkServerConfig:
    """How to run the local endpoint. Small on purpose: the machines it runs on are shared
    laptops and 2-core CI runners, and the data a development run holds is small."""

    work_dir: Path  # metastore_db/, warehouse/, the log and the log4j2 configuration
    host: str = LOCALHOST
    port: int = 0  # 0: a free port, chosen at start
    cores: int = 2  # local[cores]
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    start_timeout: float = 300.0  # seconds; a cold JVM on a loaded 2-core machine is slow

    @property
    def log_path(self) -> Path:
        return self.work_dir / LOG_NAME


@dataclass
class SparkServer:
    """A running local endpoint, started by start(); stop() ends it."""

    host: str
    port: int
    work_dir: Path
    log_path: Path
    startup_seconds: float
    process: subprocess.Popen = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def environment(self) -> dict[str, str]:
        """What points the pipeline (profiles.yml, spark_warehouse.py) at this endpoint."""
        return {
            "SEGMENT_CADENCE_SPARK_HOST": self.host,
            "SEGMENT_CADENCE_SPARK_PORT": str(self.port),
        }

    def stop(self, timeout: float = 60.0) -> None:
        stop(self, timeout)


def default_work_dir() -> Path:
    """Where the local endpoint keeps its metastore and tables: under the state directory."""
    return paths.state_dir() / "spark"


def spark_confs(config: SparkServerConfig) -> dict[str, str]:
    """The Spark configuration of the local endpoint.

    Few shuffle partitions (the default 200 is for clusters: each is a task, on 2 cores),
    UTC session time zone (month ends and timestamps mean the same on every machine, as on
    DuckDB), no web UI (it would take port 4040 and more memory), the driver bound to the
    loopback address only, and the metastore and warehouse inside work_dir, so that two
    endpoints on one machine never share them.
    """
    work = config.work_dir.resolve()
    return {
        "spark.master": f"local[{config.cores}]",
        "spark.app.name": "segment-cadence-spark-endpoint",
        "spark.driver.memory": config.driver_memory,
        "spark.driver.host": LOCALHOST,
        "spark.driver.bindAddress": LOCALHOST,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(work / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={work / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={work} "
            f"-Dlog4j2.configurationFile=file:{work / 'log4j2.properties'} "
            "-Duser.timezone=UTC"
        ),
    }


def hive_confs(config: SparkServerConfig, port: int) -> dict[str, str]:
    """The Thrift server's own settings: binary transport on host:port, no authentication
    (the loopback address is the only way in), and sessions that do not outlive a client."""
    return {
        "hive.server2.thrift.bind.host": config.host,
        "hive.server2.thrift.port": str(port),
        "hive.server2.transport.mode": "binary",
        "hive.server2.authentication": "NONE",
        "hive.server2.enable.doAs": "false",
    }


def launch_command(config: SparkServerConfig, spark_home: Path, port: int) -> list[str]:
    """spark-submit of the Thrift server class, as Spark's sbin/start-thriftserver.sh does
    (which the pip pyspark does not ship), in the foreground so that its pid is ours."""
    command = [str(spark_home / "bin" / "spark-submit"), "--class", THRIFT_SERVER_CLASS]
    for key, value in spark_confs(config).items():
        command += ["--conf", f"{key}={value}"]
    command.append("spark-internal")  # no application jar: the class ships with Spark
    for key, value in hive_confs(config, port).items():
        command += ["--hiveconf", f"{key}={value}"]
    return command


def find_java() -> Path:
    """Java as Spark's launcher finds it: JAVA_HOME/bin/java, else `java` on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java")
    if not found:
        raise SparkServerError(
            "the local Spark endpoint needs Java 17: no `java` on the PATH and no JAVA_HOME "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    return Path(found)


def find_spark_home() -> Path:
    """The pip pyspark's directory, which is a Spark distribution (bin/, jars/), checked for
    the Thrift server's jar. Found without importing pyspark (slow, and not needed here)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkServerError(
            "the local Spark endpoint needs pyspark: pip install -c constraints.txt -e '.[spark]'"
        )
    home = Path(next(iter(spec.submodule_search_locations)))
    if not list((home / "jars").glob("spark-hive-thriftserver_*.jar")):
        raise SparkServerError(f"pyspark at {home} has no spark-hive-thriftserver jar in jars/")
    return home


def free_port(host: str = LOCALHOST) -> int:
    """A port nobody listens on now. The server binds it moments later; if someone else
    takes it in between, the server fails to start and says so in its log."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(log_path: Path, lines: int = 5) -> str:
    """The last error-looking line of the log (or its last line), for a one-line message."""
    try:
        text = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in text if " ERROR " in line or "Exception" in line]
    chosen = (errors or text)[-lines:]
    return chosen[-1].strip() if chosen else ""


def start(config: SparkServerConfig) -> SparkServer:
    """Start the endpoint and return once it accepts connections.

    The server runs in a process group of its own, so that stop() ends the JVM and nothing
    else; its output goes to work_dir/thriftserver.log. Raises SparkServerError, with one
    line and the log's path, if Java or pyspark is missing or the server exits or does not
    listen within start_timeout (it is stopped then).
    """
    find_java()
    spark_home = find_spark_home()
    work = config.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    port = config.port or free_port(config.host)
    if accepts_connections(config.host, port):
        raise SparkServerError(f"port {config.host}:{port} is already in use")
    environment = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": LOCALHOST,
        "PYSPARK_PYTHON": sys.executable,
    }
    started = time.monotonic()
    with open(config.log_path, "ab") as log:
        process = subprocess.Popen(
            launch_command(config, spark_home, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,  # anything Spark or Derby writes relative to its directory stays here
            env=environment,
            start_new_session=True,
        )
    server = SparkServer(
        host=config.host,
        port=port,
        work_dir=work,
        log_path=config.log_path,
        startup_seconds=0.0,
        process=process,
    )
    while not accepts_connections(config.host, port, timeout=0.5):
        if process.poll() is not None:
            raise SparkServerError(
                f"the Spark Thrift server exited with code {process.returncode} before "
                f"listening on {config.host}:{port}: {log_tail(config.log_path)} "
                f"(log: {config.log_path})"
            )
        if time.monotonic() - started > config.start_timeout:
            stop(server)
            raise SparkServerError(
                f"the Spark Thrift server did not listen on {config.host}:{port} within "
                f"{config.start_timeout:.0f}s (log: {config.log_path})"
            )
        time.sleep(0.5)
    server.startup_seconds = time.monotonic() - started
    return server


def stop(server: SparkServer, timeout: float = 60.0) -> None:
    """End the server: SIGTERM to its process group (Spark's shutdown hooks close the
    metastore and the sessions), SIGKILL if it is still there after `timeout` seconds."""
    process = server.process
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def running(config: SparkServerConfig) -> Iterator[SparkServer]:
    """The endpoint for the length of a block (a test module, a development session)."""
    server = start(config)
    try:
        yield server
    finally:
        stop(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segment_cadence.platform.spark_server",
        description="Run a local Spark SQL endpoint (Thrift server) until interrupted.",
    )
    parser.add_argument("--dir", type=Path, default=None, help="default: <state dir>/spark")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SEGMENT_CADENCE_SPARK_PORT", DEFAULT_PORT)),
        help=f"default: SEGMENT_CADENCE_SPARK_PORT or {DEFAULT_PORT}; 0 picks a free one",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args(argv)
    config = SparkServerConfig(
        work_dir=args.dir or default_work_dir(),
        port=args.port,
        cores=args.cores,
        driver_memory=args.driver_memory,
    )
    try:
        server = start(config)
    except SparkServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"Spark endpoint on {server.host}:{server.port} after {server.startup_seconds:.0f}s "
        f"(pid {server.pid}, log {server.log_path}); Ctrl-C stops it. Point the pipeline at it:"
    )
    variables = " ".join(f"{key}={value}" for key, value in server.environment().items())
    print(f"export SEGMENT_CADENCE_DBT_TARGET=spark {variables}")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
