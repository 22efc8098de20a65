"""A second, private Kafka broker that only speaks SASL_SSL with SCRAM-SHA-512, for security tests.

The set-up a carrier would run, shrunk to one process:

- `make_certificates` writes, with openssl, a throwaway CA, a broker certificate signed by it
  (EC P-256, SAN IP:127.0.0.1 and DNS:localhost, serverAuth) and an unrelated "wrong" CA.
  Kafka reads them as PEM stores (ssl.keystore.type=PEM, ssl.truststore.type=PEM), so no
  keytool/JKS step is needed.
- `SecureKafka.start` writes a KRaft config (combined broker+controller, one node) whose only
  client listener is SASL_SSL on a free loopback port; the controller listener is PLAINTEXT on
  another free loopback port (KRaft's own quorum traffic, not for clients). Brokers talk to each
  other over SASL_SSL as user `broker`. Storage is formatted with the SCRAM credentials of
  `broker` and `netready` (`kafka.tools.StorageTool format --add-scram ...`), then the broker is
  started from the jars the shared stack resolved (scripts/stack.sh, stack/kafka/pom.xml).
- `stop` terminates exactly the process it started.

Everything lives in a temporary directory; ports come from the kernel (bind to port 0).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO / "stack" / "kafka" / "pom.xml"
HOST = "127.0.0.1"
USER = "netready"
BROKER_USER = "broker"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def kafka_libs() -> Path:
    """The jar directory scripts/stack.sh resolved for the pom's Kafka version."""
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text()).group(1)
    cache = Path(os.environ.get("NETREADY_CACHE", Path.home() / ".cache" / "netready"))
    libs = cache / f"kafka-{version}" / "libs"
    if not (libs / f"kafka-server-{version}.jar").is_file():
        raise RuntimeError(f"no Kafka {version} jars in {libs}: run `bash scripts/stack.sh up kafka` once")
    return libs


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA clients trust (PEM)
    wrong_ca: Path  # a CA that did not sign the broker certificate
    broker_keystore: Path  # broker private key (PKCS#8) followed by its certificate


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr}")


def _self_signed_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)


def make_certificates(directory: Path) -> Certificates:
    """A CA, a broker certificate it signs (valid for 127.0.0.1 and localhost) and a wrong CA."""
    directory.mkdir(parents=True, exist_ok=True)
    _self_signed_ca(directory, "netready-test-ca")
    _self_signed_ca(directory, "netready-wrong-ca")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost", cwd=directory)
    (directory / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "netready-test-ca.pem", "-CAkey", "netready-test-ca.key",
             "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "broker.ext", cwd=directory)
    keystore = directory / "broker-keystore.pem"
    keystore.write_text((directory / "broker.key").read_text() + (directory / "broker.crt").read_text())
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    keystore.chmod(0o600)
    return Certificates(directory / "netready-test-ca.pem", directory / "netready-wrong-ca.pem", keystore)


class SecureKafka:
    """One KRaft node with a SASL_SSL (SCRAM-SHA-512) listener; see the module docstring."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.password = "scram-" + secrets.token_urlsafe(18)  # user `netready`
        self._broker_password = "broker-" + secrets.token_urlsafe(18)
        self.port = free_port()
        self.controller_port = free_port()
        self.certs: Certificates | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def password_file(self) -> Path:
        return self.dir / "netready.password"

    @property
    def log_path(self) -> Path:
        return self.dir / "kafka.out"

    def start(self) -> "SecureKafka":
        self.certs = make_certificates(self.dir / "certs")
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)
        config = self._write_config()
        self._format(config, "--add-scram", f"SCRAM-SHA-512=[name={BROKER_USER},password={self._broker_password}]",
                     "--add-scram", f"SCRAM-SHA-512=[name={USER},password={self.password}]")
        self._launch(config)
        self._wait_ready()
        return self

    def _java(self) -> list[str]:
        return ["java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self._write_log4j()}",
                "-cp", f"{kafka_libs()}/*"]

    def _format(self, config: Path, *extra: str) -> None:
        java = self._java()
        cluster_id = subprocess.run(java + ["kafka.tools.StorageTool", "random-uuid"], capture_output=True,
                                    text=True, timeout=60, check=True).stdout.split()[-1]
        fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                                     *extra], capture_output=True, text=True, timeout=60)
        if fmt.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {fmt.stdout[-2000:]} {fmt.stderr[-2000:]}")

    def _launch(self, config: Path) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self._java() + ["kafka.Kafka", str(config)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def _wait_ready(self) -> None:
        """Until the broker says it has started and answers `_probe` on its client port."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited ({self.proc.returncode}):\n{self._log_tail()}")
            if "started (kafka.server.KafkaRaftServer)" in self._server_log():
                try:
                    self._probe()
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker not ready within {START_TIMEOUT_S} s:\n{self._log_tail()}")
            time.sleep(0.2)

    def _probe(self) -> None:
        """A TLS handshake with our CA."""
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        with socket.create_connection((HOST, self.port), timeout=2) as raw, \
                context.wrap_socket(raw, server_hostname=HOST):
            pass

    def _server_log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _log_tail(self) -> str:
        return (self.log_path.read_text(errors="replace")[-2000:] + "\n" + self._server_log()[-3000:])

    def _write_config(self) -> Path:
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{BROKER_USER}" password="{self._broker_password}";')
        path = self.dir / "server.properties"
        path.write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{self.controller_port}
listeners=SASL_SSL://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}
advertised.listeners=SASL_SSL://{HOST}:{self.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}
ssl.keystore.type=PEM
ssl.keystore.location={self.certs.broker_keystore}
ssl.truststore.type=PEM
ssl.truststore.location={self.certs.ca}
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
log.dirs={self.dir / 'data'}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
""")
        path.chmod(0o600)  # it holds the broker's SCRAM password
        return path

    def _write_log4j(self) -> Path:
        path = self.dir / "log4j2.properties"
        path.write_text(f"""\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {self.dir / 'server.log'}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
""")
        return path
