"""VTrans backend: structured pruning of transformers guided by the Variational Information Bottleneck.

Public API:
    load_model(path, device="cpu", dtype=torch.float32, task=None) -> torch.nn.Module
    save_model(model, out_dir, config=None, tokenizer_from=None)
    prune_model(model, keep, scales=None) -> torch.nn.Module
    export_onnx(model, path, with_token_types=False) -> opset
"""

__version__ = "0.1.0"

from .checkpoint import load_model, load_shape, save_model  # noqa: E402
from .export import export_onnx  # noqa: E402
from .prune import KeepSet, UnitScales, masked_gates, prune_model  # noqa: E402

__all__ = ["load_model", "load_shape", "save_model", "prune_model", "export_onnx", "KeepSet", "UnitScales", "masked_gates", "__version__"]
