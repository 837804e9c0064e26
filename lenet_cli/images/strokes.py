"""Which components of a field are one digit's strokes (segment.py's step 3): specks dropped, the short
pieces of a broken stroke joined, and marks lying over or under one another grouped. Numpy only."""

from __future__ import annotations

import numpy as np

from lenet_cli.images.components import Box, NotANumber

MAX_MARKS = 300  # more separate marks than this is a page or a texture, not a written number
MERGE_SWEEPS = 4  # sweeps that group the parts of broken digits, at most
TALLEST_GROUP = 1.3  # digit heights: marks over one another make one digit only if no taller together


def join_broken_strokes(
    labels: np.ndarray, boxes: list[Box], digit_height: float
) -> tuple[np.ndarray, int, list[Box]]:
    """Components relabelled: specks (both sides under a fifth of the digits' height) dropped, and short
    pieces of one broken stroke (a thin "1" that the scan broke in two) made one: pieces each under 0.6 of
    the digits' height, nearly touching, that together stand at least that tall and no wider than a narrow
    digit."""
    speck = 0.2 * digit_height
    kept = [index for index, box in enumerate(boxes) if box.height >= speck or box.width >= speck]
    if len(kept) > MAX_MARKS:
        raise NotANumber(f"{len(kept):,} separate marks: too many for a written number")
    parent = {index: index for index in kept}
    reach = max(2.0, 0.12 * digit_height)
    short = [index for index in kept if boxes[index].height < 0.6 * digit_height]
    for position, a in enumerate(short):
        for b in short[position + 1 :]:
            box_a, box_b = boxes[a], boxes[b]
            apart = max(
                box_b.left - box_a.right,
                box_a.left - box_b.right,
                box_b.top - box_a.bottom,
                box_a.top - box_b.bottom,
            )
            union = box_a.union(box_b)
            if apart <= reach and union.height >= 0.6 * digit_height and union.width <= 0.6 * digit_height:
                parent[max(_find(parent, a), _find(parent, b))] = min(_find(parent, a), _find(parent, b))
    mapping = np.zeros(len(boxes) + 1, np.int32)
    roots = sorted({_find(parent, index) for index in kept})
    number_of = {root: number + 1 for number, root in enumerate(roots)}
    for index in kept:
        mapping[index + 1] = number_of[_find(parent, index)]
    specks = [box for index, box in enumerate(boxes) if mapping[index + 1] == 0]
    return mapping[labels], len(roots), specks


def _find(parent: dict[int, int], item: int) -> int:
    while parent[item] != item:
        item = parent[item]
    return item


def overlaps_any(index: int, boxes: list[Box], areas: np.ndarray, digit_height: float) -> bool:
    """Whether another sizeable component covers most of this one's columns (a broken stroke's piece)."""
    box = boxes[index]
    for other_index, other in enumerate(boxes):
        if other_index == index or areas[other_index] < areas[index]:
            continue
        shared = min(box.right, other.right) - max(box.left, other.left)
        vertical_gap = max(other.top - box.bottom, box.top - other.bottom)
        if shared >= 0.5 * box.width and vertical_gap < 0.25 * digit_height:
            return True
    return False


def merge_broken(keep: list[int], boxes: list[Box], digit_height: float) -> list[list[int]]:
    """Components grouped where one lies mostly over or under another (the parts of a broken digit): a
    sweep from left to right that checks each group only against the groups whose columns it reaches,
    repeated while a grown group reaches further (at most MERGE_SWEEPS times). O(n log n) for a number's
    marks; at most MAX_MARKS squared checks a sweep for any field."""
    groups = [[index] for index in keep]
    for _ in range(MERGE_SWEEPS):
        merged = _merge_sweep(groups, boxes, TALLEST_GROUP * digit_height)
        if len(merged) == len(groups):
            break
        groups = merged
    return groups


def _merge_sweep(groups: list[list[int]], boxes: list[Box], tallest: float) -> list[list[int]]:
    order = sorted(range(len(groups)), key=lambda g: group_box(groups[g], boxes).left)
    merged: list[list[int]] = []
    merged_boxes: list[Box] = []
    reaching: list[int] = []  # indices into merged whose right edge may pass the next group's left
    for position in order:
        group, box = groups[position], group_box(groups[position], boxes)
        reaching = [m for m in reaching if merged_boxes[m].right > box.left]
        for m in reaching:
            other = merged_boxes[m]
            shared = min(box.right, other.right) - max(box.left, other.left)
            if shared >= 0.6 * min(box.width, other.width) and other.union(box).height <= tallest:
                merged[m] = merged[m] + group
                merged_boxes[m] = other.union(box)
                break
        else:
            merged.append(list(group))
            merged_boxes.append(box)
            reaching.append(len(merged) - 1)
    return merged


def group_box(group: list[int], boxes: list[Box]) -> Box:
    box = boxes[group[0]]
    for index in group[1:]:
        box = box.union(boxes[index])
    return box
