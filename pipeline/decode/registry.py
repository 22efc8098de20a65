"""Confluent Schema Registry lookups: writer schemas by id, cached for the process lifetime.

With a registry, a Confluent wire-format message is read with the schema it was written with
and resolved onto schemas/telemetry.avsc (Avro schema resolution), so producers may evolve their
schema compatibly. Without one, every message is read with telemetry.avsc directly.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import fastavro

from ..errors import DecodeError


class UnknownSchemaError(ValueError):
    """The registry does not know this schema id (the message is rejected, not retried)."""


class SchemaRegistry:
    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._schemas: dict[int, dict] = {}

    def __repr__(self) -> str:
        return f"SchemaRegistry({self.url.split('@')[-1]!r})"

    def writer_schema(self, schema_id: int) -> dict:
        found = self._schemas.get(schema_id)
        if found is None:
            found = self._schemas[schema_id] = self._fetch(schema_id)
        return found

    def _fetch(self, schema_id: int) -> dict:
        request = urllib.request.Request(f"{self.url}/schemas/ids/{schema_id}",
                                         headers={"Accept": "application/vnd.schemaregistry.v1+json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry") from None
            raise DecodeError(f"schema registry answered {exc.code} for id {schema_id}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DecodeError(f"schema registry unreachable for id {schema_id}: {exc}") from None
        try:
            return fastavro.parse_schema(json.loads(body["schema"]))
        except Exception as exc:
            raise UnknownSchemaError(f"schema id {schema_id} is not a usable Avro schema: {exc}") from None
