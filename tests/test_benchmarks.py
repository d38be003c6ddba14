"""The benchmark scripts keep working: each runs once at a tiny size (its figures mean nothing
here; docs/performance.md has the real ones)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_profile_step_prints_every_op_the_optimizer_and_the_primitives():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), "--batch", "2",
                             "--steps", "1", "--primitives"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("resnet20 training, batch 2, 32x32, cpu: "), out
    for row in ("| Conv2dFunction | backward |", "| BatchNormFunction | forward |", "| SGD | step |",
                "| gradient accumulation |", "| other (engine, Python) |", "| im2col 3x3 of"):
        assert row in out, out
