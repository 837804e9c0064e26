"""The reference to measure lenet serve against: a plain FastAPI + uvicorn endpoint in one process, each request
decoded, preprocessed with lenet's preprocess.py and run through the model on its own.

    python bench/serving/plain_server.py CHECKPOINT PORT
"""

import sys

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lenet_cli.core.errors import ImageError
from lenet_cli.data.datasets import as_input
from lenet_cli.formats.model_files import load_any_model
from lenet_cli.images.preprocess import load_digit

model, _ = load_any_model(sys.argv[1])
app = FastAPI()


@app.post("/predict")
async def predict(request: Request):
    data = await request.body()
    try:
        digit = load_digit(data)
    except ImageError as error:
        return JSONResponse({"error": str(error)}, status_code=422)
    with torch.inference_mode():
        probabilities = model(as_input(digit[None])).softmax(dim=1)[0]
    top = probabilities.topk(3)
    return {
        "predictions": [
            {
                "path": "-",
                "label": int(top.indices[0]),
                "confidence": float(top.values[0]),
                "top_k": [
                    {"label": int(i), "probability": float(p)}
                    for i, p in zip(top.indices, top.values, strict=True)
                ],
            }
        ]
    }


if __name__ == "__main__":
    # uvicorn as `pip install fastapi uvicorn` brings it: h11 and asyncio (pass "fast" to use httptools, uvloop)
    fast = len(sys.argv) > 3 and sys.argv[3] == "fast"
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
        access_log=False,
        http="httptools" if fast else "h11",
        loop="uvloop" if fast else "asyncio",
    )
