"""Using a downloaded model as its users do: in a Python process that imports Keras alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np

OUR_PACKAGES = ("api", "cli", "client", "shared", "worker")

PREDICT = f"""
import sys
import keras, numpy as np
model = keras.models.load_model(sys.argv[1])
ours = sorted(name for name in sys.modules if name.split(".")[0] in {OUR_PACKAGES!r})
assert not ours, f"loading imported {{ours}}"
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
print(" ".join(type(layer).__name__ for layer in model.layers))
"""


def predict_with_plain_keras(model: Path, images: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The model's predictions for ``images`` and the class names of its layers, computed by a
    new Python that imports nothing of this project: in isolated mode (``-I``: neither the
    current folder nor ``PYTHON*`` variables on its path) and run from the model's folder."""
    given, predicted = model.with_suffix(".images.npy"), model.with_suffix(".predicted.npy")
    np.save(given, images)
    done = subprocess.run(
        [sys.executable, "-I", "-c", PREDICT, str(model), str(given), str(predicted)],
        cwd=model.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(predicted), done.stdout.split()
