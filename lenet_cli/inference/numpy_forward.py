"""LeNet-5's forward pass in numpy, and the torch-free models `lenet predict` runs on the CPU.

The layers are lenet_cli/model.py's: conv 5x5 (padding 2) -> 2x2 max-pool -> ReLU -> conv 5x5 ->
2x2 max-pool -> ReLU -> 400 -> 120 -> 84 -> 10 with ReLU between, in float32 (the ReLUs run before the
pools here, which gives the same values and the maps `lenet explain` shows). Each convolution is one
matrix product over the image's 5x5 patches. The sums run in another order than torch's, so logits
agree to float32 rounding, not bit for bit (tests/test_fast_predict.py bounds the difference).

Images go through one at a time: BLAS picks its kernels by the shapes it is given, so a batch could
round an image differently from the same image alone, and `lenet predict a.png` must say what
`lenet predict a.png b.png` says of a.png.
"""

from __future__ import annotations

import numpy as np

from lenet_cli.formats.onnx_session import OnnxSession

F32 = np.float32


class ArrayModel:
    """A model that maps uint8 digits (N, 28, 28) to logits (N, 10) with numpy, on the CPU."""

    def logits(self, images_u8: np.ndarray) -> np.ndarray:
        rows = [self.forward(as_input(images_u8[index : index + 1])) for index in range(len(images_u8))]
        return np.concatenate(rows) if rows else np.zeros((0, 10), F32)

    def forward(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def as_input(images_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], as lenet_cli.data.as_input divides."""
    return images_u8[:, None].astype(F32) / F32(255)


class NumpyLeNet5(ArrayModel):
    def __init__(self, state_dict: dict[str, np.ndarray]):
        self.weights = {key: np.ascontiguousarray(value, dtype=F32) for key, value in state_dict.items()}

    def forward(self, images: np.ndarray) -> np.ndarray:
        return self.inside(images)["FC3"]

    def inside(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's values for a batch, by `lenet summary`'s names (`lenet explain` shows them): each
        convolution and FC1/FC2 after its ReLU, each pool's output, FC3's logits. ReLU before the pool is
        the model's pool-then-ReLU exactly: both take the largest of four values or zero."""
        layers = {"Input": images}
        layers["Conv1"] = _relu(self._conv_layer(images, "backbone.conv1", padding=2))
        layers["Pool1"] = _max_pool(layers["Conv1"])
        layers["Conv2"] = _relu(self._conv_layer(layers["Pool1"], "backbone.conv2", padding=0))
        layers["Pool2"] = _max_pool(layers["Conv2"])
        flat = layers["Pool2"].reshape(len(images), -1)  # (N, 16 * 5 * 5), channels first as torch.flatten
        layers["FC1"] = _relu(self._linear_layer(flat, "head.fc1"))
        layers["FC2"] = _relu(self._linear_layer(layers["FC1"], "head.fc2"))
        layers["FC3"] = self._linear_layer(layers["FC2"], "head.fc3")
        return layers

    def _conv_layer(self, images: np.ndarray, layer: str, padding: int) -> np.ndarray:
        return _conv(images, self.weights[f"{layer}.weight"], self.weights[f"{layer}.bias"], padding)

    def _linear_layer(self, values: np.ndarray, layer: str) -> np.ndarray:
        return values @ self.weights[f"{layer}.weight"].T + self.weights[f"{layer}.bias"]


class OnnxArrayModel(ArrayModel):
    def __init__(self, session: OnnxSession):
        self.session = session

    def forward(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(np.ascontiguousarray(images))


def _conv(images: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int) -> np.ndarray:
    """Cross-correlation, stride 1: (N, C, H, W) with (O, C, k, k) -> (N, O, H', W')."""
    if padding:
        images = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    count, channels = images.shape[:2]
    outputs, _, size, _ = weight.shape
    patches = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(2, 3))  # N C H' W' k k
    height, width = patches.shape[2:4]
    columns = patches.transpose(0, 2, 3, 1, 4, 5).reshape(count * height * width, channels * size * size)
    result = columns @ weight.reshape(outputs, -1).T + bias  # (N * H' * W', O)
    return np.ascontiguousarray(result.reshape(count, height, width, outputs).transpose(0, 3, 1, 2))


def _max_pool(images: np.ndarray) -> np.ndarray:
    """2x2 max-pool, stride 2, as the maximum of the four strided views (a reduction over two axes of a
    reshaped array is much slower in numpy)."""
    top = np.maximum(images[:, :, 0::2, 0::2], images[:, :, 0::2, 1::2])
    return np.maximum(top, np.maximum(images[:, :, 1::2, 0::2], images[:, :, 1::2, 1::2]))


def _relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, F32(0))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def ranked(probabilities: np.ndarray, top_k: int) -> list[tuple[list[int], list[float]]]:
    """For each row: the `top_k` labels, most probable first (ties: the lower label), and their probabilities."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(top_k, probabilities.shape[1])]
    chosen = np.take_along_axis(probabilities, order, axis=1)
    return list(zip(order.tolist(), chosen.tolist(), strict=True))
