"""A deployment box without torch: `import audit.attacks`, EngineTarget and Square need NumPy and
ONNX Runtime only, and a white-box attack says what to do instead of failing on an import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys

    class NoTorch:  # torch (and everything that would pull it in) cannot be imported
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "timm", "onnx2torch"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    from audit.attacks import Budget, EngineTarget, run_attack
    from audit.engines.base import open_engine
    from audit.errors import ConfigError
    from audit.spec.model import ModelSpec

    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(16, 16),
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), class_names=["a", "b", "c", "d"])
    target = EngineTarget(open_engine(sys.argv[1]), spec)
    x = np.load(sys.argv[2])
    y = target.logits(x).argmax(1)
    out = run_attack("square", target, x, y, Budget("linf", 8 / 255), queries=50)
    aa = run_attack("autoattack", target, x, y, Budget("linf", 8 / 255), queries=20)
    try:
        run_attack("pgd", target, x, y, Budget("linf", 8 / 255))
    except ConfigError as exc:
        print("pgd refused:", exc)
    assert "torch" not in sys.modules
    print("square", out.correct.sum(), len(x), aa.attack)
""")


def test_square_on_the_engine_without_torch(onnx_path, points, tmp_path):
    x, _ = points
    np_path = tmp_path / "x.npy"
    import numpy as np

    np.save(np_path, x[:8])
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(onnx_path), str(np_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pgd refused:" in done.stdout and "--attack square" in done.stdout
    assert "square only: target not differentiable" in done.stdout
