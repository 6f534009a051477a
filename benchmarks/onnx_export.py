"""ONNX export time and inference throughput: gradwise under no_grad vs onnxruntime on the file.

For the MLP (784-256-128-10) and the small CNN of the other benchmarks: the time of one
``gw.onnx.export`` (trace, convert, check, write), the file size, the largest difference between
the two outputs, and images/s of both at batch 256 over 10 batches, interleaved rounds, medians.
onnxruntime runs on the CPU with as many intra-op threads as NumPy's BLAS has.

Run: python benchmarks/onnx_export.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
from _common import (
    gw_model,
    initial_weights,
    interleaved,
    load_fashion_mnist,
    machine_description,
    print_table,
    setup_threads,
)

import gradwise as gw

BATCH = 256
BATCHES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cores = setup_threads()
    images, _, source = load_fashion_mnist()
    print(machine_description())
    print(f"data: {source}; onnxruntime {ort.__version__}, {cores} intra-op threads")
    folder = tempfile.mkdtemp(prefix="gradwise-onnx-bench-")
    for kind in ("mlp", "cnn"):
        model = gw_model(kind, initial_weights(kind))
        model.eval()
        shape = (784,) if kind == "mlp" else (1, 28, 28)
        batches = [images[i : i + BATCH].reshape(-1, *shape).astype(np.float32)
                   for i in range(0, BATCH * BATCHES, BATCH)]
        path = os.path.join(folder, f"{kind}.onnx")
        export_times = []
        for _ in range(3):
            start = time.perf_counter()
            gw.onnx.export(model, batches[0][:2], path)
            export_times.append(time.perf_counter() - start)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cores
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        with gw.no_grad():
            expected = model(gw.tensor(batches[0])).numpy()
        got = session.run(None, {"input": batches[0]})[0]

        def gw_run(model=model, batches=batches) -> None:
            with gw.no_grad():
                for x in batches:
                    model(gw.tensor(x))

        def ort_run(session=session, batches=batches) -> None:
            for x in batches:
                session.run(None, {"input": x})

        times = interleaved({"gradwise": gw_run, "onnxruntime": ort_run}, repeats=args.rounds)
        n = BATCH * BATCHES
        print_table(f"{kind}: export {min(export_times) * 1e3:.0f} ms (best of 3), file "
                    f"{os.path.getsize(path) / 1e6:.2f} MB, max |difference| "
                    f"{np.abs(got - expected).max():.2e}", [
            ("gradwise no_grad", f"{n / times['gradwise']:,.0f} images/s", ""),
            ("onnxruntime", f"{n / times['onnxruntime']:,.0f} images/s",
             f"{times['gradwise'] / times['onnxruntime']:.2f}x gradwise's speed"),
        ])


if __name__ == "__main__":
    main()
