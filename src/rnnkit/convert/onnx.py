"""rnnkit <-> ONNX (``import onnx`` happens on first use; ``pip install rnnkit[onnx]``).

- :func:`to_onnx` (:mod:`.onnx_export`): a Sequential or layer -> an ONNX graph computing the same
  function, with dynamic batch and time and an optional ``lengths`` input.
- :func:`from_onnx` (:mod:`.onnx_import`): an ONNX graph of RNN/GRU/LSTM, Gather, MatMul/Gemm and
  activation nodes (what ``to_onnx`` and ``torch.onnx.export(dynamo=False)`` write) -> rnnkit layers.
- :func:`run_onnx_node` (:mod:`.onnx_node`): one recurrent node run on given inputs through an rnnkit layer.

Gate orders and bias layouts come from ``layouts.LAYOUTS["onnx"]``; see docs/interop.md.
"""

from .onnx_export import to_onnx
from .onnx_import import from_onnx
from .onnx_node import DEFAULT_OPSET, run_onnx_node

__all__ = ["DEFAULT_OPSET", "from_onnx", "run_onnx_node", "to_onnx"]
