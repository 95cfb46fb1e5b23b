"""A single-node Apache Kafka (KRaft) that bizstream fetches from Maven Central and runs itself.

No Docker engine is assumed: the broker's jars come from Maven Central through ``mvn dependency:copy-dependencies``
(``bizstream/stream/kafka/pom.xml``), storage is formatted once with ``kafka.tools.StorageTool``, and the broker runs
as ``java kafka.Kafka server.properties`` in its own process group. Everything it writes lives in a cache folder
outside the source tree::

    <cache>/kafka-<version>/libs/          the jars (shared by every broker instance)
    <cache>/brokers/<name>/server.properties, log4j2.properties, data/, logs/, broker.pid

Readiness is "a metadata request succeeds", because the broker opens its client port only once it has registered
with its controller.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bizstream.errors import BrokerError
from bizstream.settings import BrokerSettings

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
_READY_MARKER = ".complete"


@dataclass(frozen=True)
class BrokerStatus:
    """What `bizstream broker status` reports."""

    name: str
    pid: int | None
    ready: bool
    bootstrap_servers: str
    directory: Path

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self.pid is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """One single-node KRaft broker on 127.0.0.1, controlled through its folder and pid file."""

    def __init__(self, settings: BrokerSettings, name: str = "default") -> None:
        self.settings = settings
        self.name = name
        self.cache = settings.cache_path
        self.directory = self.cache / "brokers" / name
        self.libs = self.cache / f"kafka-{settings.kafka_version}" / "libs"

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for clients."""
        return f"127.0.0.1:{self.settings.port}"

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> BrokerStatus:
        """Fetch, format (once) and start the broker, then wait until it answers a metadata request."""
        current = self.status()
        if current.running:
            if not current.ready:
                self.wait_ready()
            return self.status()
        for port in (self.settings.port, self.settings.controller_port):
            if _port_in_use(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is already taken by another program; stop it or set "
                    f"BIZSTREAM_BROKER__PORT / BIZSTREAM_BROKER__CONTROLLER_PORT to free ports"
                )
        self.fetch()
        self._write_config()
        self._format_storage()
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "stdout.log").open("ab") as out:
            process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(self.directory / "server.properties")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: Ctrl-C in the shell does not reach it
                cwd=self.directory,
            )
        (self.directory / "broker.pid").write_text(str(process.pid))
        try:
            self.wait_ready(process=process)
        except BrokerError:
            self.stop()
            raise
        return self.status()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker (a clean shutdown) and wait; SIGKILL if it does not go in time."""
        pid = self._pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        (self.directory / "broker.pid").unlink(missing_ok=True)

    def status(self) -> BrokerStatus:
        """Whether the broker runs and whether it answers clients."""
        pid = self._pid()
        ready = pid is not None and _metadata_ok(self.bootstrap_servers, timeout=5.0)
        return BrokerStatus(self.name, pid, ready, self.bootstrap_servers, self.directory)

    def wait_ready(self, process: subprocess.Popen[bytes] | None = None) -> None:
        """Poll with metadata requests until the broker answers, its process dies, or the start timeout passes."""
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerError(
                    f"the Kafka broker exited with code {process.returncode} while starting; "
                    f"see {self.directory / 'logs' / 'stdout.log'}"
                )
            if _port_in_use(self.settings.port) and _metadata_ok(self.bootstrap_servers, timeout=5.0):
                return
            time.sleep(0.5)
        raise BrokerError(
            f"the Kafka broker did not answer on {self.bootstrap_servers} within {self.settings.start_timeout_s:.0f} s; "
            f"see {self.directory / 'logs'}"
        )

    def delete(self) -> None:
        """Stop the broker and delete its data and logs (the shared jars stay)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- setup -----------------------------------------------------------------------------------------------------

    def fetch(self) -> Path:
        """Copy the broker's jars from Maven Central into the cache, once per Kafka version."""
        if (self.libs / _READY_MARKER).exists():
            return self.libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Maven (mvn) is not on PATH; install it (e.g. `apt-get install maven`) to fetch Kafka")
        partial = self.libs.with_name("libs.partial")
        shutil.rmtree(partial, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}", f"-Dkafka.version={self.settings.kafka_version}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(
                f"fetching Kafka {self.settings.kafka_version} with Maven failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-2000:]}"
            )
        (partial / _READY_MARKER).touch()
        shutil.rmtree(self.libs, ignore_errors=True)
        partial.rename(self.libs)  # atomic: a half-fetched folder is never taken for a whole one
        return self.libs

    def _java(self) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerError("Java 17+ is needed to run the Kafka broker; install a JDK or set JAVA_HOME")
        heap = f"-Xmx{self.settings.heap_mb}m"
        return [
            java, f"-Xms{self.settings.heap_mb}m", heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.directory / 'logs'}", "-cp", str(self.libs / "*"),
        ]  # fmt: skip

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        port, controller = self.settings.port, self.settings.controller_port
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "2",
            "log.retention.hours": "24",
            "message.max.bytes": "4194304",
        }
        text = "".join(f"{key}={value}\n" for key, value in properties.items())
        (self.directory / "server.properties").write_text(text)
        (self.directory / "log4j2.properties").write_text(_LOG4J2.format(logs=self.directory / "logs"))

    def _format_storage(self) -> None:
        if (self.directory / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # "--cluster-id=<id>", not "-t <id>": a random id may start with "-" and would be read as an option.
        command = [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                   f"--config={self.directory / 'server.properties'}"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.directory)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed (exit {result.returncode}): {result.stdout}{result.stderr}")

    def _pid(self) -> int | None:
        try:
            pid = int((self.directory / "broker.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None


_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs}/server.log
appender.file.filePattern = {logs}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (killed, not yet reaped) still answers kill(0); /proc tells the difference.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _metadata_ok(bootstrap_servers: str, timeout: float) -> bool:
    """True when the cluster answers a metadata request."""
    from aiokafka import AIOKafkaClient  # kept local: `bizstream --help` should not pay for importing aiokafka
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return True
        except (KafkaError, OSError, asyncio.TimeoutError):
            return False
        finally:
            await client.close()

    return asyncio.run(probe())
