"""ONNX export: trace a model's forward pass through the graph the engine records, write ``.onnx``.

Example:
    >>> import gradwise as gw
    >>> model = gw.nn.Sequential(gw.nn.Linear(4, 8), gw.nn.ReLU(), gw.nn.Linear(8, 3))
    >>> gw.onnx.export(model, gw.randn(2, 4), "model.onnx")   # batch axis stays dynamic

The ``onnx`` package is needed only when exporting (``pip install 'gradwise[onnx]'``);
``import gradwise`` works without it.
"""

from gradwise.onnx.export import DEFAULT_OPSET, SUPPORTED_OPSETS, ExportError, export

__all__ = ["DEFAULT_OPSET", "SUPPORTED_OPSETS", "ExportError", "export"]
