"""A private plaintext Kafka broker that clients can reach only through a fault proxy.

Kafka clients bootstrap, then connect to the address each broker advertises. This broker
listens on one loopback port and advertises the proxy's, so every client connection (metadata,
produce, fetch, the group coordinator, offset commits) crosses the proxy and meets its faults.
One KRaft node (broker + controller), started from the jars the shared stack resolved.
"""
from __future__ import annotations

import socket
from pathlib import Path

from secure_kafka import HOST, SecureKafka, free_port


class ProxiedKafka(SecureKafka):
    def __init__(self, directory: Path, advertised_port: int, port: int):
        super().__init__(directory)
        self.port, self.advertised_port = port, advertised_port

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.advertised_port}"

    def start(self) -> "ProxiedKafka":
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format(config)
        self._launch(config)
        self._wait_ready()
        return self

    def _probe(self) -> None:
        socket.create_connection((HOST, self.port), timeout=2).close()

    def _write_config(self) -> Path:
        path = self.dir / "server.properties"
        path.write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{self.controller_port}
listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{self.advertised_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
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
        return path


__all__ = ["ProxiedKafka", "free_port"]
