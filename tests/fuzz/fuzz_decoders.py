"""Coverage-guided fuzzing of one decoder entry point with atheris (libFuzzer).

    .venv/bin/python tests/fuzz/fuzz_decoders.py TARGET [CORPUS_DIR] [libFuzzer flags]

TARGET is a name from `decoder_targets.TARGETS` (jsonl, json, avro-container, avro, confluent,
message, arrow-ipc, arrow-message, parquet, gnmic, telegraf, worker). A seed corpus of
well-formed inputs is written to CORPUS_DIR (a fresh temporary directory when none is given)
before fuzzing starts. Any exception other than the documented DecodeError, or any broken
invariant (see decoder_targets.run_target), is a crash: libFuzzer saves the input as crash-*.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["pipeline"]):
    import decoder_targets


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in decoder_targets.TARGETS:
        sys.exit(f"usage: {argv[0]} TARGET [CORPUS_DIR] [libFuzzer flags]; "
                 f"TARGET one of {', '.join(decoder_targets.TARGETS)}")
    name = argv[1]
    rest = argv[2:]
    dirs = [a for a in rest if not a.startswith("-")]
    if not dirs:
        dirs = [tempfile.mkdtemp(prefix=f"netready-corpus-{name}-")]
        rest = dirs + rest
    if Path(dirs[0]).is_dir():  # a file instead replays one input
        for i, seed in enumerate(decoder_targets.seed_inputs(name)):
            (Path(dirs[0]) / f"seed-{i}").write_bytes(seed)

    for seed in decoder_targets.seed_inputs(name):  # lazy imports (pyarrow's pandas shim) happen
        decoder_targets.run_target(name, seed)        # here, not inside libFuzzer's loop

    def test_one_input(data: bytes) -> None:
        decoder_targets.run_target(name, data)

    atheris.Setup([argv[0], *rest], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
