#!/usr/bin/env python3
"""Turn the fault tests' JSON lines ($NETREADY_FAULT_REPORT) into RELIABILITY.md figures.

    NETREADY_FAULT_REPORT=/tmp/faults.jsonl bash scripts/test.sh tests/integration
    python3 scripts/reliability_report.py /tmp/faults.jsonl                     # print the rows
    python3 scripts/reliability_report.py /tmp/faults.jsonl --update RELIABILITY.md

Each line is {"test": KEY, ...figures}; the last line of a key wins. A test writes its line only
after its exactness checks passed, so a line without `samples_lost` / `duplicates` means 0 of each.
`--update` rewrites the four figure cells (recovery, max lag, lost, duplicates) of the matrix
rows whose `key` column is KEY, and leaves every other line of the file as it is.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Figures that say how long recovery took, in order of preference.
RECOVERY_KEYS = ("recovery_s", "max_recovery_s", "recovery_after_up_s", "recovery_after_kill_s",
                 "resumed_after_up_s", "caught_up_after_stop_s", "takeover_s",
                 "restart_after_kill2_drained_s")


def load(path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise SystemExit(f"{path}:{n}: not JSON ({exc})")
        if not isinstance(entry, dict) or "test" not in entry:
            raise SystemExit(f"{path}:{n}: no \"test\" key")
        out[str(entry["test"])] = entry
    return out


def cells(entry: dict) -> list[str]:
    """recovery, max lag, samples lost, duplicates."""
    keys = [k for k in RECOVERY_KEYS if entry.get(k) is not None]
    keys += [k for k in entry if re.match(r"recover\w*_s$", k) and entry[k] is not None]
    recovery = f"{entry[keys[0]]} s ({keys[0]})" if keys else "-"
    lag = entry.get("max_lag")
    return [recovery, "-" if lag is None else str(lag), str(entry.get("samples_lost", 0)),
            str(entry.get("duplicates", 0))]


def rows(entries: dict[str, dict]) -> list[str]:
    head = ["| key | recovery | max lag | lost | duplicates | other figures |", "|---|---|---|---|---|---|"]
    shown = {"test", "max_lag", "samples_lost", "duplicates"}
    body = []
    for key, entry in entries.items():
        other = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()
                          if k not in shown and not isinstance(v, (dict, list)))
        body.append("| " + " | ".join([key, *cells(entry), other]) + " |")
    return head + body


def update(doc: Path, entries: dict[str, dict]) -> list[str]:
    """Rewrite figure cells in place; returns the keys that had no row."""
    lines = doc.read_text(encoding="utf-8").splitlines(keepends=True)
    header: list[str] | None = None
    found = set()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            header = None
            continue
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in parts]
            continue
        if "key" not in header or "recovery" not in header or re.fullmatch(r"[-: ]*", "".join(parts)):
            continue
        key = parts[header.index("key")].strip("` ")
        if key not in entries:
            continue
        found.add(key)
        new = dict(zip(("recovery", "max lag", "lost", "duplicates"), cells(entries[key])))
        for name, value in new.items():
            if name in header:
                parts[header.index(name)] = value
        lines[i] = "| " + " | ".join(parts) + " |\n"
    doc.write_text("".join(lines), encoding="utf-8")
    return sorted(set(entries) - found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="the file NETREADY_FAULT_REPORT named")
    p.add_argument("--update", type=Path, metavar="RELIABILITY.md", help="fill the matrix figure cells in place")
    a = p.parse_args(argv)
    entries = load(a.report)
    if a.update:
        missing = update(a.update, entries)
        if missing:
            print("no matrix row with key: " + ", ".join(missing), file=sys.stderr)
    else:
        print("\n".join(rows(entries)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
