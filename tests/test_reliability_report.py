"""scripts/reliability_report.py fills the matrix cells of the matching rows and nothing else."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reliability_report.py"

DOC = """# Reliability

| fault | what is checked | test | key | recovery | max lag | lost | duplicates |
|---|---|---|---|---|---|---|---|
| broker restart | exact | `t.py::a` | `broker_restart` | pending | pending | pending | pending |
| disk full | exact | `t.py::b` | `disk_full` | pending | pending | pending | pending |

| other | table |
|---|---|
| broker_restart | untouched |
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_update_fills_only_the_rows_with_a_matching_key(tmp_path):
    report = tmp_path / "faults.jsonl"
    lines = [{"test": "broker_restart", "max_lag": 10, "recovery_after_up_s": 1.0},
             {"test": "broker_restart", "max_lag": 1200, "recovery_after_up_s": 3.4, "broker_down_s": 5.0},
             {"test": "not_in_the_matrix", "max_lag": 1}]
    report.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text(DOC)
    proc = run(str(report), "--update", str(doc))
    assert proc.returncode == 0, proc.stderr
    assert "not_in_the_matrix" in proc.stderr
    text = doc.read_text()
    # the last line of a key wins; a passed test's line without loss figures means 0 and 0
    assert "| `broker_restart` | 3.4 s (recovery_after_up_s) | 1200 | 0 | 0 |" in text
    assert "| `disk_full` | pending | pending | pending | pending |" in text
    assert "| broker_restart | untouched |" in text
    assert text.count("\n") == DOC.count("\n")


def test_print_rows_and_reject_a_broken_line(tmp_path):
    report = tmp_path / "faults.jsonl"
    report.write_text('{"test": "disk_full", "max_lag": 7, "samples_lost": 0, "duplicates": 0, "filled_mib": 40}\n')
    proc = run(str(report))
    assert proc.returncode == 0, proc.stderr
    assert "| disk_full | - | 7 | 0 | 0 | filled_mib=40 |" in proc.stdout
    report.write_text('{"test": "disk_full"}\nnot json\n')
    proc = run(str(report))
    assert proc.returncode != 0 and ":2: not JSON" in proc.stderr
