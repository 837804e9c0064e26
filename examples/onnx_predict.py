"""Classify digits with an ONNX file from `lenet export`, using only onnxruntime, numpy and Pillow.

    python examples/onnx_predict.py last.onnx digit.png [more.png ...]

This is what a deployment runs: no torch, no lenet. The images must already be in MNIST's form,
28x28 grey, white digit on black, as `lenet predict --save-preprocessed DIR` writes them (a photo
or drawing needs lenet's preprocessing first). Prints `path<TAB>digit<TAB>probability` per image.
"""

import json
import sys

import numpy as np
import onnxruntime
from PIL import Image


def load_inputs(paths):
    """float32 (N, 1, 28, 28) in [0, 1]: the model's input convention."""
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        except OSError as error:  # missing, unreadable or not an image
            raise SystemExit(f"{path}: cannot read it ({error.strerror or type(error).__name__})") from None
        if grey.shape != (28, 28):
            raise SystemExit(f"{path}: {grey.shape[1]}x{grey.shape[0]}, expected a 28x28 MNIST-form image")
        images.append(grey)
    return np.stack(images)[:, None, :, :]


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    model_path, image_paths = sys.argv[1], sys.argv[2:]
    try:
        session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own error types: missing file, not a model
        raise SystemExit(f"{model_path}: not a readable ONNX model ({str(error).splitlines()[0]})") from None
    metadata = session.get_modelmeta().custom_metadata_map
    class_names = json.loads(metadata.get("class_names", "null")) or [str(d) for d in range(10)]
    (logits,) = session.run(["logits"], {"image": load_inputs(image_paths)})
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
    for path, row in zip(image_paths, probabilities, strict=True):
        best = int(row.argmax())
        print(f"{path}\t{class_names[best]}\t{row[best]:.4f}")


if __name__ == "__main__":
    main()
