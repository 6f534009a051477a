"""Two processes, the same seeded runs, the default doctor: identical findings and evidence.

The sampled steps depend on the step number and the configuration only, never on the clock, so
nothing about the verdict can differ from one process to the next (only the measured overhead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = """
import json
from doctor import planted
from gradwise.doctor import DoctorConfig

out = {}
for name in ("cnn_collapse", "dead_after_spike", "healthy_sgd_momentum"):
    scenario = next(s for s in planted.CATALOGUE if s.name == name)
    original = planted.fit
    planted.fit = lambda *a, **k: original(*a, **{**k, "config": DoctorConfig()})
    try:
        doctor = scenario.run().doctor
    finally:
        planted.fit = original
    out[name] = {
        "sampled": doctor.stats.sampled_steps,
        "findings": [f.to_dict() for f in doctor.findings],
        "text": doctor.format_findings(overhead=False),
    }
print(json.dumps(out))
"""


def _run() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_processes_give_identical_findings():
    first, second = _run(), _run()
    assert first == second
    names = {name: sorted({f["name"] for f in run["findings"]}) for name, run in first.items()}
    assert names == {"cnn_collapse": ["dead_relus", "lr_too_high"],
                     "dead_after_spike": ["dead_relus", "lr_too_high"],
                     "healthy_sgd_momentum": []}
    assert first["cnn_collapse"]["sampled"][:9] == [0, 1, 2, 3, 4, 5, 6, 7, 32]
