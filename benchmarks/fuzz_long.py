"""Long fuzzing campaigns against every loader of untrusted files (IDX, checkpoints, configs).

Each target gets a time budget; inputs are random bytes, byte-level mutations of a valid seed
file (bit flips, byte sets, truncations, insertions, deletions, header integers set to
absurd values) and, for JSON targets, structural edits. Every input must either load or raise
the target's own error within a time limit and a memory budget: the same check the test suite
runs (tests/reliability/harness.py), only for much longer. Prints inputs tried and outcomes
per target; exits 1 on the first input that breaks the contract, after saving it.

With ``--atheris`` (``pip install atheris``) each target is instead run under atheris's
coverage-guided fuzzer for ``--seconds`` seconds.

Run: python benchmarks/fuzz_long.py [--seconds 60] [--targets idx checkpoint_weights ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reliability.harness import (  # noqa: E402 - after making the tests folder importable
    INTERESTING_INTS,
    OUTCOMES,
    TRIED,
    LoadTarget,
    check_untrusted_input,
    json_paths,
    load_targets,
    mutate,
    replace_at,
)

JSON_TARGETS = {"checkpoint_manifest", "config_json", "run_config"}
JSON_VALUES = [None, True, 0, -1, 2**63, 1e308, "", "x" * 1000, [], {}, [[[]]], {"a": None}]


def random_mutations(rng: np.random.Generator) -> list[tuple]:
    """One to four byte-level mutations, drawn the way the hypothesis strategy draws them."""
    edits = []
    for _ in range(rng.integers(1, 5)):
        position = int(rng.integers(0, 33) if rng.random() < 0.5 else rng.integers(0, 2**20))
        kind = str(rng.choice(["flip", "set", "truncate", "insert", "delete", "u32be", "u32le",
                               "u64le"]))
        if kind == "flip":
            edits.append((kind, position, int(rng.integers(0, 8))))
        elif kind == "set":
            edits.append((kind, position, int(rng.integers(0, 256))))
        elif kind == "truncate":
            edits.append((kind, position))
        elif kind == "insert":
            edits.append((kind, position, rng.bytes(int(rng.integers(1, 17)))))
        elif kind == "delete":
            edits.append((kind, position, int(rng.integers(1, 65))))
        else:
            value = int(rng.choice(INTERESTING_INTS)) if rng.random() < 0.7 else int(
                rng.integers(0, 2**63))
            edits.append((kind, position, value))
    return edits


def make_input(name: str, seed: bytes, rng: np.random.Generator) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return rng.bytes(int(rng.integers(0, 512)))
    if name in JSON_TARGETS and roll < 0.5:
        try:
            document = json.loads(seed)
        except ValueError:
            return seed
        paths = json_paths(document)
        path = paths[int(rng.integers(0, len(paths)))]
        new = JSON_VALUES[int(rng.integers(0, len(JSON_VALUES)))]
        return json.dumps(replace_at(document, path, new)).encode()
    return mutate(seed, random_mutations(rng))


def fuzz_target(target: LoadTarget, seconds: float, rng: np.random.Generator) -> bool:
    """Fuzz one target for ``seconds``; False (after saving the input) when one breaks it."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with tempfile.TemporaryDirectory() as directory:
            path = target.write_valid(Path(directory))
            data = make_input(target.name, path.read_bytes(), rng)
            path.write_bytes(data)
            try:
                check_untrusted_input(target, path)
            except BaseException as error:  # noqa: BLE001 - report any contract breach
                saved = Path(f"fuzz-crash-{target.name}.bin")
                saved.write_bytes(data)
                print(f"{target.name}: {type(error).__name__}: {error}\n  input saved to {saved}")
                return False
    return True


def run_atheris(target: LoadTarget, seconds: float) -> None:
    import atheris  # optional: pip install atheris

    directory = Path(tempfile.mkdtemp())
    path = target.write_valid(directory)
    seed = path.read_bytes()

    def one_input(data: bytes) -> None:
        path.write_bytes(data or seed)
        check_untrusted_input(target, path)

    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}"], one_input)
    atheris.Fuzz()


def main() -> int:
    targets = load_targets()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="budget per target")
    parser.add_argument("--targets", nargs="+", choices=sorted(targets), default=sorted(targets))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, one target")
    args = parser.parse_args()
    if args.atheris:
        run_atheris(targets[args.targets[0]], args.seconds)
        return 0
    rng = np.random.default_rng(args.seed)
    print(f"{'target':22s} {'inputs':>8s} {'loaded':>8s} {'refused':>8s} {'inputs/s':>9s}")
    for name in args.targets:
        started = time.perf_counter()
        ok = fuzz_target(targets[name], args.seconds, rng)
        rate = TRIED[name] / (time.perf_counter() - started)
        print(f"{name:22s} {TRIED[name]:8d} {OUTCOMES[name, 'loaded']:8d} "
              f"{OUTCOMES[name, 'refused']:8d} {rate:9.0f}", flush=True)
        if not ok:
            return 1
    print(f"total inputs: {sum(TRIED.values())}; every one loaded or was refused cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
