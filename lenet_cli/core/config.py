"""Settings: the training dataclass and every choice list, the single source of defaults and choices for
the CLI and for Python use. Nothing here imports torch, so the CLI can build its options from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

SCHEDULES = ("onecycle", "constant")
OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
DATASETS = {  # name: torchvision class
    "mnist": "MNIST",
    "fashion-mnist": "FashionMNIST",
    "kmnist": "KMNIST",
    "usps": "USPS",  # real ZIP-code digits, 16x16, put into MNIST's form (data/usps.py)
}
DIGIT_DATASETS = ("mnist", "usps")
DEFAULT_TOP_K = 3  # classes listed per image by predict, its --json and POST /predict
INVERT_CHOICES = ("auto", "yes", "no")  # dark ink on light paper? auto detects it from the border
EXPORT_FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}  # format: file suffix


def class_names(dataset: str) -> list[str]:
    """The names of a dataset's classes (torchvision is imported only for the datasets other than MNIST)."""
    if dataset in DIGIT_DATASETS:
        return [str(digit) for digit in range(10)]
    import torchvision.datasets

    return list(getattr(torchvision.datasets, DATASETS[dataset]).classes)


# Two recipes. From scratch on the one-cycle schedule (the default): larger batches (fewer Python steps a
# second), a high peak rate and label smoothing; bench/training/time_to_accuracy.py
# chose them for the time to a good model. Otherwise (--init, or the tutorial's constant schedule): the
# tutorial's batch of 64 and plain cross-entropy, so a fine-tuned model keeps the confidence it started with.
FAST_BATCH_SIZE, TUTORIAL_BATCH_SIZE = 128, 64
FAST_LABEL_SMOOTHING = 0.1
# Learning rate when --lr is not given: the peak of the one-cycle schedule, or the constant rate.
# `constant` + Adam 1e-3 is the tutorial's recipe.
DEFAULT_LR = {
    ("adam", "onecycle"): 1.2e-2,
    ("adam", "constant"): 1e-3,
    ("sgd", "onecycle"): 0.1,
    ("sgd", "constant"): 0.01,
}
# With --init (fine-tuning a trained model): it keeps more of MNIST and of other people's digits than the
# from-scratch peak would (bench/training/finetune.py).
FINETUNE_LR = {"adam": 1e-3, "sgd": 0.03}
SGD_MOMENTUM = 0.9
# With --images, this share of every batch comes from the user's own digits (augmented), the rest from
# the dataset: enough to learn a style from a few hundred images without forgetting 60,000.
DEFAULT_IMAGE_SHARE = 0.25
DEFAULT_CHECKPOINT_DIR = "checkpoints"  # where runs are written, and where predict, read and serve look first
DEFAULT_DATA_DIR = ".data"  # where datasets are looked for (and downloaded) unless told
# With --styles, this share of every batch comes from the style pool (training/style_data.py).
DEFAULT_STYLE_SHARE = 0.25
# With --cuts, this share of every batch comes from the reader's cuts (training/cut_data.py).
CUT_SHARE = 0.25
# With --numbers, this share of every batch comes from the pieces of the user's numbers (training/number_pool.py).
NUMBER_SHARE = 0.625  # 40 of the 64 pieces of a fine-tuning batch: the aligned pieces seen more often
# Fine-tuning on whole numbers smooths its targets all the same: it kept more of MNIST and read held-out
# numbers no worse (docs/performance.md, "what --numbers teaches").
NUMBER_LABEL_SMOOTHING = 0.1
EVAL_BATCH_SIZE = 1000  # large enough to amortise dispatch, small enough to keep memory flat


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5  # passes over the training images
    batch_size: int | None = None  # images per optimizer step; None = the recipe's (see images_per_step)
    lr: float | None = None  # peak (onecycle) or fixed (constant) rate; None = DEFAULT_LR
    schedule: str = "onecycle"  # "onecycle" or "constant" (the tutorial's)
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
    dataset: str = "mnist"  # "mnist", "fashion-mnist", "kmnist" or "usps"
    data_dir: str = DEFAULT_DATA_DIR  # flat folder of IDX files, or torchvision's download root
    checkpoint_dir: str = DEFAULT_CHECKPOINT_DIR  # each run writes into a new sub-folder run-N
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    seed: int = 0  # model init, data order and validation hold-out
    val_size: int = 0  # training images held out for validation (0: train on all)
    images: tuple[str, ...] = ()  # labelled image folders (DIR/<class>/<image>) mixed into every batch
    image_share: float = DEFAULT_IMAGE_SHARE  # with `images`: the fraction of every batch drawn from them
    init: str | None = None  # start from this checkpoint's weights (a new optimizer and schedule)
    styles: bool = False  # mix digits in the hands MNIST lacks (fonts, edits, scans) into every batch
    style_share: float = DEFAULT_STYLE_SHARE  # with `styles`: the fraction of every batch drawn from them
    # Mix the number reader's cuts (digits, and bad cuts taught as no digit) into every batch.
    cuts: bool = False
    # Folders of labelled whole numbers (images + labels.csv), learned by alignment.
    numbers: tuple[str, ...] = ()
    time: float | None = None  # a time budget in seconds (--time): the one-cycle schedule is fitted to it
    patience: int = 0  # with val_size: stop when validation accuracy has not improved for this many epochs
    label_smoothing: float | None = None  # None = the recipe's (see smoothing)

    @property
    def fast_recipe(self) -> bool:
        """From scratch on the one-cycle schedule: the recipe tuned for the time to a good model."""
        return self.init is None and self.schedule == "onecycle"

    @property
    def images_per_step(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return FAST_BATCH_SIZE if self.fast_recipe else TUTORIAL_BATCH_SIZE

    @property
    def smoothing(self) -> float:
        """Label smoothing of the training loss."""
        if self.label_smoothing is not None:
            return self.label_smoothing
        if self.fast_recipe:
            return FAST_LABEL_SMOOTHING
        return NUMBER_LABEL_SMOOTHING if self.numbers else 0.0

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.init is not None:
            return FINETUNE_LR[self.optimizer]
        return DEFAULT_LR[(self.optimizer, self.schedule)]

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "lr": self.learning_rate,
            "batch_size": self.images_per_step,
            "label_smoothing": self.smoothing,
            "images": list(self.images),
            "numbers": list(self.numbers),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        known.setdefault("label_smoothing", 0.0)  # saved before smoothing existed: trained without it
        for folders in ("images", "numbers"):
            if folders in known:
                known[folders] = tuple(known[folders])
        return cls(**known)

    def with_changes(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)
