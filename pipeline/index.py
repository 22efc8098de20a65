"""Names to dense integer ids: the one place where strings meet the kernel.

A link is identified by (metro, router, link); a metro by its name. Ids are
handed out in first-seen order and never reused, so the kernel can index
plain arrays with them. Caps bound the memory label spam can claim: rows that
would create a metro or link beyond its cap are refused, not aggregated.

Each link also remembers its path: the first non-null `site` (access point) and
`dc` (computing centre) seen on it. Once every link's path is known, a batch
costs one O(links) check per column (otherwise a validity bitmap and a gather,
about 12 ns a row); the links whose path
changed since the last `take_new_paths()` are landed in `netready.link_paths`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEP = "\x1f"  # unit separator: validation refuses control characters in names
log = logging.getLogger("netready.index")


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
        self.link_site: list[str | None] = []
        self.link_dc: list[str | None] = []
        self._known = {"site": np.zeros(0, dtype=bool), "dc": np.zeros(0, dtype=bool)}
        self._paths_new: set[int] = set()
        self.cap_reached: set[str] = set()  # reasons already logged: one line per cap, not per row

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
            for reason in set(refused[bad].tolist()) - self.cap_reached:
                self.cap_reached.add(reason)
                cap, kind = ((self.max_metros, "metros") if reason == "metro_cap" else (self.max_links, "links"))
                log.warning("%s cap of %d reached ([limits] max_%s): samples of new %s are refused "
                            "with reason %s; known %s keep flowing", kind[:-1], cap, kind, kind, reason, kind)
            link_id[bad] = -1
            metro_id[bad] = -1
        self._note_paths(table, link_id)
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
        if len(self.links) >= self.max_links:
            return -1  # before the split: under label spam this runs once per distinct new name
        metro, router, link = key.split(_SEP)
        metro_id = self._metro_ids.get(metro, -1)
        if metro_id < 0:
            return -1
        self._link_ids[key] = len(self.links)
        self.links.append((metro, router, link))
        self.link_metro.append(metro_id)
        self.link_site.append(None)
        self.link_dc.append(None)
        return len(self.links) - 1

    def _note_paths(self, table: pa.Table, link_id: np.ndarray) -> None:
        """Remember the first non-null site and dc of each link (rows in arrival order)."""
        n_links = len(self.links)
        for name, names in (("site", self.link_site), ("dc", self.link_dc)):
            if name not in table.column_names:
                continue
            column = table[name]
            if column.null_count == len(column):
                continue  # no paths in this batch: nothing to do
            known = self._known[name]
            if len(known) < n_links:
                known = self._known[name] = np.concatenate(
                    [known, np.zeros(max(n_links - len(known), len(known)), dtype=bool)])
            if known[:n_links].all():
                continue  # the usual case: every link's path is known (O(links), not O(rows))
            need = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
            need &= link_id >= 0
            rows = np.flatnonzero(need)
            if not len(rows):
                continue
            rows = rows[~known[link_id[rows]]]
            if not len(rows):
                continue
            ids, first = np.unique(link_id[rows], return_index=True)
            values = column.take(pa.array(rows[first])).to_pylist()
            for link, value in zip(ids.tolist(), values):
                names[link] = value
            known[ids] = True
            self._paths_new.update(ids.tolist())

    def take_new_paths(self) -> list[tuple[str, str, str, str | None, str | None]]:
        """(metro, router, link, site, dc) of the links whose path became known (or more
        complete) since the last call; each call hands a link out at most once per change."""
        ids = sorted(self._paths_new)
        self._paths_new.clear()
        return [(*self.links[i], self.link_site[i], self.link_dc[i]) for i in ids]

    def snapshot(self) -> dict:
        state = {"metros": list(self.metros), "links": [list(link) for link in self.links]}
        if any(s is not None for s in self.link_site) or any(d is not None for d in self.link_dc):
            state["paths"] = [[s, d] for s, d in zip(self.link_site, self.link_dc)]
        return state

    @classmethod
    def restore(cls, state: dict, max_metros: int = 10_000, max_links: int = 1_000_000) -> "NameIndex":
        index = cls(max_metros, max_links)
        for name in state["metros"]:
            index._metro(name)
        for metro, router, link in state["links"]:
            index._link(_SEP.join((metro, router, link)))
        paths = state.get("paths") or []
        index._known = {"site": np.zeros(len(index.links), dtype=bool),
                        "dc": np.zeros(len(index.links), dtype=bool)}
        for i, (site, dc) in enumerate(paths[:len(index.links)]):
            index.link_site[i], index.link_dc[i] = site, dc
            index._known["site"][i] = site is not None
            index._known["dc"][i] = dc is not None
            if site is not None or dc is not None:
                index._paths_new.add(i)  # re-landed after a restart: idempotent
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
