"""`lenet explain` on a terminal: the input, every layer's maps in block characters, fc layers and scores as
bars, and the attribution over the input. Two pixel rows share a character cell (a half block): in true
grey levels on a colour terminal, black or white at half the layer's strongest value when piped."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text

from lenet_cli.inference.attribution import METHODS
from lenet_cli.inference.explain import MAPS, Explanation

SPARKS = " ▁▂▃▄▅▆▇█"
SCORE_BAR = 30  # characters of the longest score bar
NOTES = {
    "Input": "what the network sees",
    "Conv1": "after ReLU",
    "Pool1": "2x2 max",
    "Conv2": "after ReLU",
    "Pool2": "2x2 max",
    "FC1": "after ReLU",
    "FC2": "after ReLU",
    "FC3": "logits",
}


def explanation_view(explanation: Explanation, names: list[str], width: int, color: bool) -> RenderableType:
    """Everything `lenet explain` shows of one image."""
    if explanation.error is not None:
        return Text(f"{explanation.path}: error: {explanation.error}", style="red")
    answer, runner_up = explanation.ranking[:2]
    probabilities = explanation.probabilities
    parts: list[RenderableType] = [
        Text.assemble(
            (explanation.path, "bold"),
            f": {names[answer]} ({probabilities[answer]:.1%}), runner-up {names[runner_up]} "
            f"({probabilities[runner_up]:.1%})",
        ),
        why_row(explanation, names, color),
    ]
    for name in MAPS[1:]:
        values = explanation.layers[name]
        parts.append(caption(name, values.shape))
        parts.append(map_grid(values, width, color))
    for name in ("FC1", "FC2"):
        values = explanation.layers[name]
        parts.append(caption(name, values.shape))
        parts.append(sparkline(values, width))
    parts.append(caption("FC3", (10,)))
    parts.append(score_bars(explanation, names))
    return Group(*parts, Text(""))


def caption(name: str, shape: tuple[int, ...]) -> Text:
    return Text.assemble((name, "bold"), f" {'×'.join(map(str, shape))}", (f"  {NOTES[name]}", "dim"))


def why_row(explanation: Explanation, names: list[str], color: bool) -> Text:
    """The input beside the attribution of each explained class, with their captions above."""
    image = explanation.layers["Input"][0]
    pictures = [half_blocks(image, 1.0, color)]
    titles = ["Input 1×28×28"]
    for label, attribution in explanation.attributions.items():
        pictures.append(overlay(image, attribution, color))
        titles.append(f"why {names[label]}")
    legend = "red: pushed the score up, blue: down" if color else "+: pushed the score up, -: down"
    header = Text(f"Attribution by {METHODS[explanation.method]} ({legend})\n", style="dim")
    header.append("   ".join(title.ljust(28) for title in titles).rstrip() + "\n", style="bold")
    return header + side_by_side(pictures, "   ")


def side_by_side(pictures: list[list[Text]], gap: str) -> Text:
    """Pictures (lists of lines, equally tall) laid out in one row."""
    text = Text()
    for lines in zip(*pictures, strict=True):
        text.append(Text(gap).join(lines))
        text.append("\n")
    text.rstrip()
    return text


def map_grid(values: np.ndarray, width: int, color: bool) -> Text:
    """A layer's maps (C, H, W) side by side, as many to a row as `width` takes; one scale for the
    layer, so a quiet map looks quiet beside a strong one."""
    scale = float(values.max()) or 1.0
    per_row = max(1, (width + 1) // (values.shape[2] + 1))
    rows = []
    for start in range(0, len(values), per_row):
        rows.append(
            side_by_side([half_blocks(m, scale, color) for m in values[start : start + per_row]], " ")
        )
    return Text("\n\n").join(rows)


def half_blocks(values: np.ndarray, scale: float, color: bool) -> list[Text]:
    """A 2-D map (at most `scale`) as lines of half blocks: two pixel rows a line."""
    levels = np.clip(values / scale, 0, 1)
    if len(levels) % 2:
        levels = np.vstack([levels, np.zeros((1, levels.shape[1]))])
    grey = (levels * 255).round().astype(int).tolist()
    lines = []
    for top_row, bottom_row in zip(grey[0::2], grey[1::2], strict=True):
        line = Text()
        for top, bottom in zip(top_row, bottom_row, strict=True):
            if color:
                line.append("▀", style=f"rgb({top},{top},{top}) on rgb({bottom},{bottom},{bottom})")
            else:
                line.append(" ▄▀█"[(top >= 128) * 2 + (bottom >= 128)])
        lines.append(line)
    return lines


def overlay(image: np.ndarray, attribution: np.ndarray, color: bool) -> list[Text]:
    """The attribution over the input: red where a pixel pushed the class's score up, blue where it pushed
    it down, the ink in grey beneath. Piped: `+` and `-` mark the strongest tenth, `·` the rest of the ink."""
    strength = np.abs(attribution).max() or 1.0
    signed = np.clip(attribution / strength, -1, 1)
    if not color:
        strong = np.abs(attribution) >= np.quantile(np.abs(attribution), 0.9) if strength else signed != 0
        lines = []
        for top in range(0, 28, 2):
            line = Text()
            for column in range(28):
                cell = slice(top, top + 2), column
                push = signed[cell][strong[cell]].sum() if strong[cell].any() else 0.0
                ink = image[cell].max() >= 0.5
                line.append("+" if push > 0 else "-" if push < 0 else "·" if ink else " ")
            lines.append(line)
        return lines
    grey = image * 90  # the ink, dim, so the colours stand out
    red = np.clip(grey + 255 * np.clip(signed, 0, 1), 0, 255)
    blue = np.clip(grey + 255 * np.clip(-signed, 0, 1), 0, 255)
    green = np.clip(grey, 0, 255)
    rgb = np.stack([red, green, blue], axis=-1).round().astype(int).tolist()
    lines = []
    for top_row, bottom_row in zip(rgb[0::2], rgb[1::2], strict=True):
        line = Text()
        for top, bottom in zip(top_row, bottom_row, strict=True):
            line.append(
                "▀", style=f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})"
            )
        lines.append(line)
    return lines


def sparkline(values: np.ndarray, width: int) -> Text:
    """A vector's values as bars of eighths, one character a value, wrapped to `width`."""
    scale = float(values.max()) or 1.0
    levels = np.clip(np.ceil(values / scale * 8), 0, 8).astype(int)
    characters = "".join(SPARKS[level] for level in levels)
    return Text("\n".join(characters[i : i + width] for i in range(0, len(characters), width)))


def score_bars(explanation: Explanation, names: list[str]) -> Text:
    """The ten scores: a bar of the probability, the probability and the logit; the answer in bold and the
    runner-up marked."""
    answer, runner_up = explanation.ranking[:2]
    text = Text()
    for label, (probability, logit) in enumerate(
        zip(explanation.probabilities, explanation.logits, strict=True)
    ):
        bar = "█" * round(probability * SCORE_BAR)
        mark = "  answer" if label == answer else "  runner-up" if label == runner_up else ""
        style = "bold" if label == answer else ""
        text.append(
            f"{names[label]:>2} {bar:<{SCORE_BAR}} {probability:6.1%}  logit {logit:+7.2f}{mark}\n", style
        )
    text.rstrip()
    return text
