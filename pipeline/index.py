"""Names to dense integer ids: the one place where strings meet the kernel.

A link is identified by (metro, router, link); a metro by its name. Ids are
handed out in first-seen order and never reused, so the kernel can index
plain arrays with them. Caps bound the memory label spam can claim: rows that
would create a metro or link beyond its cap are refused, not aggregated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEP = "\x1f"  # unit separator: validation refuses control characters in names


@dataclass
class Encoded:
    """Ids for the rows of one table; `refused[i]` holds a reason code or None."""

    metro_id: np.ndarray  # int32, -1 where refused
    link_id: np.ndarray  # int32, -1 where refused
    refused: np.ndarray  # object: reason code or None per row


class NameIndex:
    def __init__(self, max_metros: int = 10_000, max_links: int = 1_000_000):
        self.max_metros = max_metros
        self.max_links = max_links
        self.metros: list[str] = []
        self.links: list[tuple[str, str, str]] = []  # (metro, router, link)
        self.link_metro: list[int] = []
        self._metro_ids: dict[str, int] = {}
        self._link_ids: dict[str, int] = {}

    def encode(self, table: pa.Table) -> Encoded:
        """Ids for every row of a CLEAN_SCHEMA table, registering new names within the caps."""
        metro_codes, metro_names = _dictionary(table["metro"])
        metro_map = np.array([self._metro(name) for name in metro_names], dtype=np.int32)
        metro_id = metro_map[metro_codes] if len(metro_codes) else np.empty(0, dtype=np.int32)

        joined = pc.binary_join_element_wise(table["metro"], table["router"], table["link"], _SEP)
        link_codes, link_keys = _dictionary(joined)
        link_map = np.array([self._link(key) for key in link_keys], dtype=np.int32)
        link_id = link_map[link_codes] if len(link_codes) else np.empty(0, dtype=np.int32)

        refused = np.full(len(metro_id), None, dtype=object)
        bad = np.flatnonzero((metro_id < 0) | (link_id < 0))
        if len(bad):
            refused[bad] = np.where(metro_id[bad] < 0, "metro_cap", "link_cap")
            link_id[bad] = -1
            metro_id[bad] = -1
        return Encoded(metro_id=metro_id, link_id=link_id, refused=refused)

    def _metro(self, name: str) -> int:
        found = self._metro_ids.get(name)
        if found is not None:
            return found
        if len(self.metros) >= self.max_metros:
            return -1
        self._metro_ids[name] = len(self.metros)
        self.metros.append(name)
        return len(self.metros) - 1

    def _link(self, key: str) -> int:
        found = self._link_ids.get(key)
        if found is not None:
            return found
        metro, router, link = key.split(_SEP)
        metro_id = self._metro_ids.get(metro, -1)
        if metro_id < 0 or len(self.links) >= self.max_links:
            return -1
        self._link_ids[key] = len(self.links)
        self.links.append((metro, router, link))
        self.link_metro.append(metro_id)
        return len(self.links) - 1

    def snapshot(self) -> dict:
        return {"metros": list(self.metros), "links": [list(link) for link in self.links]}

    @classmethod
    def restore(cls, state: dict, max_metros: int = 10_000, max_links: int = 1_000_000) -> "NameIndex":
        index = cls(max_metros, max_links)
        for name in state["metros"]:
            index._metro(name)
        for metro, router, link in state["links"]:
            index._link(_SEP.join((metro, router, link)))
        return index


def _dictionary(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Per-row codes into the list of distinct values, in first-seen order."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
        if isinstance(encoded, pa.ChunkedArray):  # empty
            return np.empty(0, dtype=np.int32), []
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes, encoded.dictionary.to_pylist()
