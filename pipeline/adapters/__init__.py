"""Collector adapters: gNMIc and Telegraf output mapped onto the telemetry record by configuration.

Carriers already run a collector; an `[adapter]` TOML section (`AdapterMapping.from_dict`) says
which tags and values are metro, router, link and RTT, and in which unit. The decoders return the
same DecodedChunk (CLEAN_SCHEMA columns plus Rejects) as `pipeline.decode.decode_message`, so
validation and aggregation do not know where a row came from. See docs/adapters.md.
"""
from __future__ import annotations

from pipeline.decode.chunk import DecodedChunk

from .gnmic import decode_gnmic
from .mapping import KINDS, UNITS, AdapterMapping
from .telegraf import decode_telegraf, parse_line

__all__ = ["KINDS", "UNITS", "AdapterMapping", "decode_adapter", "decode_gnmic", "decode_telegraf", "message_decoder",
           "parse_line"]


def decode_adapter(payload: bytes, mapping: AdapterMapping, *, source: str, position: int) -> DecodedChunk:
    """Decode one message with the decoder of `mapping.kind`."""
    if mapping.kind == "gnmic":
        return decode_gnmic(payload, mapping, source=source, position=position)
    return decode_telegraf(payload, mapping, source=source, position=position)


def message_decoder(kind: str, section: dict):
    """A `(payload, source, position) -> DecodedChunk` for the streaming worker, from `[adapter]`."""
    from pipeline.errors import ConfigError

    mapping = AdapterMapping.from_dict({**section, "kind": section.get("kind", kind)})
    if mapping.kind != kind:
        raise ConfigError(f"--format {kind} but [adapter] kind is {mapping.kind!r}")

    def decode(payload: bytes, source: str, position: int) -> DecodedChunk:
        return decode_adapter(payload, mapping, source=source, position=position)

    return decode
