"""An ONNX LeNet-5 run by onnxruntime on the CPU, without torch: float32 (N, 1, 28, 28) in, logits
(N, 10) out, and the metadata lenet wrote into it. onnxruntime is imported only when one is opened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet_cli.core.errors import CheckpointError


class OnnxSession:
    def __init__(self, path: Path, data: bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings on stderr
        try:  # from bytes: external data files, which could name any path, cannot be resolved
            self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
            raise CheckpointError(f"{path} is not a readable ONNX model ({first_line(error)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape_in = inputs[0].shape if len(inputs) == 1 else None
        shape_out = outputs[0].shape if outputs else None
        if shape_in is None or list(shape_in[1:]) != [1, 28, 28] or not shape_out or shape_out[-1] != 10:
            raise CheckpointError(
                f"{path} is an ONNX model but not a LeNet-5 classifier: expected one input (N, 1, 28, 28) "
                f"and logits (N, 10), found inputs {[i.shape for i in inputs]}, outputs {[o.shape for o in outputs]}"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def run(self, images: np.ndarray) -> np.ndarray:
        """Logits (N, 10) for float32 images (N, 1, 28, 28) in [0, 1]."""
        (logits,) = self.session.run([self.output_name], {self.input_name: images})
        return logits

    def metadata(self) -> dict[str, str]:
        """The model's metadata_props (what `lenet export` wrote: dataset, test_accuracy, ...)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
