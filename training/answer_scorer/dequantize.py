"""Turn an exported int8 answer model (model.onnx + tokenizer) back into a transformers checkpoint.

Why: the shipped model's float checkpoint is not kept (only its ONNX ships), and further training
must start from the weights the server actually runs, not from a retrained approximation. Each
int8 weight becomes (q - zero_point) * scale, transposed back to torch's (out, in) layout; the
names come from the ONNX graph (initializers keep their torch names; a MatMul's weight is named
by the node that reads it). Biases and LayerNorms were never quantized and are copied as they are.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from transformers import AutoModelForSequenceClassification, BertConfig

_PREFIX = "model."
_MATMUL = re.compile(r"^/model/(.+)/MatMul")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The float weights of an exported (dynamic-int8) BertForSequenceClassification graph."""
    graph = onnx.load(path).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    readers = {n.input[1]: n.output[0] for n in graph.node if n.op_type == "MatMulInteger"}
    weights: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if name.endswith(("_quantized", "_scale", "_zero_point")):
            continue
        if name.startswith(_PREFIX):
            weights[name[len(_PREFIX) :]] = torch.from_numpy(array.copy())
    for name in (n for n in arrays if n.endswith("_quantized")):
        stem = name[: -len("_quantized")]
        value = (
            arrays[name].astype(np.float32) - arrays[f"{stem}_zero_point"].astype(np.float32)
        ) * (arrays[f"{stem}_scale"].astype(np.float32))
        if stem.startswith(_PREFIX + "bert.embeddings."):  # a table, stored as torch keeps it
            weights[stem[len(_PREFIX) :]] = torch.from_numpy(value)
        elif stem.endswith("_Transposed"):  # pooler and classifier: named, stored (in, out)
            weights[stem[len(_PREFIX) : -len("_Transposed")]] = torch.from_numpy(value.T.copy())
        else:  # "onnx::MatMul_720": the reading node's path names the layer
            found = _MATMUL.match(readers[name])
            if found is None:
                raise SystemExit(f"cannot name weight {name} (read by {readers[name]})")
            layer = found.group(1).replace("/", ".")
            weights[f"{layer}.weight"] = torch.from_numpy(value.T.copy())
    return weights


def dequantize(exported: Path, config: Path, out: Path) -> None:
    """`exported`: a folder like rag_server/models/answer_scorer; `config`: a transformers
    config.json of the same architecture (the training checkpoint's)."""
    model = AutoModelForSequenceClassification.from_config(BertConfig.from_json_file(config))
    missing, unexpected = model.load_state_dict(state_dict(exported / "model.onnx"), strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"weights do not match: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in _TOKENIZER_FILES:
        shutil.copyfile(exported / name, out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="config.json to build it from")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    dequantize(args.exported, args.config, args.out)


if __name__ == "__main__":
    main()
