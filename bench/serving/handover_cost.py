"""What handing an upload to a preprocessing process costs the server's own process, per image.

    python bench/serving/handover_cost.py [--images 3000] [--mnist ../shared/data/mnist]

`lenet serve`'s event loop runs in one process, which cannot use a second core, so what it spends per
request bounds the throughput. This reads the same 28x28 PNGs, 64 at a time, through a
ProcessPoolExecutor (run_in_executor) and through `workers.PreprocessingPool` (pipes the event loop reads
itself), two processes each, and reports the CPU time of this process (all its threads) per image,
alternating three times; the preprocessing itself happens in the workers and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from PIL import Image

from lenet_cli.data.datasets import load_split
from lenet_cli.serving.worker_process import input_bytes_or_error
from lenet_cli.serving.workers import PreprocessingPool

IN_FLIGHT = 64


async def through_executor(pool: ProcessPoolExecutor, images: list[bytes]) -> None:
    loop, limit = asyncio.get_running_loop(), asyncio.Semaphore(IN_FLIGHT)

    async def one(image: bytes) -> None:
        async with limit:
            await loop.run_in_executor(pool, input_bytes_or_error, image, "auto")

    await asyncio.gather(*(one(image) for image in images))


async def through_pipes(pool: PreprocessingPool, images: list[bytes]) -> None:
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(image: bytes) -> None:
        async with limit:
            await pool.network_input(image, "auto")

    await asyncio.gather(*(one(image) for image in images))


def cpu_ms_per_image(run, images: list[bytes]) -> float:
    started = time.process_time()
    asyncio.run(run(images))
    return (time.process_time() - started) / len(images) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--mnist", default="../shared/data/mnist")
    args = parser.parse_args()
    test = load_split("mnist", args.mnist, "test")
    images = []
    for index in range(args.images):
        buffer = io.BytesIO()
        Image.fromarray(test.images[index % len(test.images)].numpy(), mode="L").save(buffer, format="PNG")
        images.append(buffer.getvalue())
    executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    pipes = PreprocessingPool(2)
    try:
        for future in [executor.submit(input_bytes_or_error, images[0], "auto") for _ in range(4)]:
            future.result()  # both started
        results: dict[str, list[float]] = {"ProcessPoolExecutor": [], "PreprocessingPool": []}
        for _ in range(3):
            results["ProcessPoolExecutor"].append(
                cpu_ms_per_image(lambda batch: through_executor(executor, batch), images)
            )
            results["PreprocessingPool"].append(
                cpu_ms_per_image(lambda batch: through_pipes(pipes, batch), images)
            )
        for name, values in results.items():
            print(
                f"{name:20} {statistics.median(values):.3f} ms of this process's CPU per image "
                f"(runs: {', '.join(f'{value:.3f}' for value in values)})"
            )
    finally:
        executor.shutdown()
        pipes.close()


if __name__ == "__main__":
    main()
