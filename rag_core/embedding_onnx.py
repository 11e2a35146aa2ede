"""The embedder on ONNX Runtime or OpenVINO: an ONNX export of the sentence-transformers model.

Why not sentence-transformers' own `backend="onnx"`: it needs `optimum-onnx`, which pins
transformers < 4.58 (we run 5.x), and its OpenVINO path needs `optimum-intel`, which pulls a newer
torch with CUDA. So the export is done here with torch's own exporter, once, from the local model
directory (never the hub), and cached under data_dir/models/embedder. int8 is ONNX Runtime's
dynamic quantization, per channel (per-tensor moved vectors to 0.95 cosine; per-channel 0.99).
Pooling is the model's own mean pooling and L2 normalisation, so fp32 vectors match torch's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag_core.errors import ModelLoadError
from rag_core.settings import usable_cores

log = logging.getLogger(__name__)

Runtime = Literal["onnx", "openvino"]
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def ort_session(onnx_file: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on `threads` cores (default: every core this process may use),
    without busy-waiting, computing int8 matrix products exactly whatever the CPU
    (`unsigned_int8_weights`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    # No busy-waiting between ops: on a shared CPU (or beside llama.cpp's threads) spinning
    # cost a one-query embedding 2-3x its latency in our measurements.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source: str | bytes = str(onnx_file)
    if int8_products_saturate():
        import onnx

        model = onnx.load(str(onnx_file))
        rewritten = unsigned_int8_weights(model)
        if rewritten:
            log.info(
                "%s: the weights of %d int8 products stored as uint8 (this CPU has no VNNI)",
                onnx_file,
                rewritten,
            )
            source = model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


_VNNI = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The first CPU's feature flags (avx2, avx512_vnni, ...); None where they cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return frozenset(
        next(
            (row.split(":", 1)[1].split() for row in text.splitlines() if row.startswith("flags")),
            [],
        )
    )


@functools.cache
def int8_products_saturate(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether ONNX Runtime's uint8 x int8 products may saturate here: on an x86 CPU without VNNI
    (or AMX) they are summed in pairs into 16 bits (VPMADDUBSW). VNNI sums them exactly, and
    uint8 x uint8 costs time (the answer scorer took 17% longer with it on an AVX2 machine), so
    the weights are rewritten only where needed; when the CPU's flags cannot be read, always."""
    flags = cpu_flags(cpuinfo)
    return flags is None or not _VNNI.intersection(flags)


def unsigned_int8_weights(model: Any) -> int:
    """Store the int8 weights of every MatMulInteger as uint8 (value + 128, zero point + 128):
    the same numbers, so the same products. Returns how many MatMulIntegers now read uint8.

    Why: dynamic quantization multiplies uint8 activations by int8 weights, and ONNX Runtime does
    that on CPUs without VNNI (AVX2, plain AVX-512) with VPMADDUBSW, whose 16-bit pair sums
    saturate. The answer scorer, validated at AUC 0.8787 on a VNNI machine, scored 0.8748 on an
    AVX2 one, and its threshold was fitted to the first. uint8 x uint8 products accumulate exactly
    in every x86 kernel, so a model gives the scores it was validated with on any machine."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    tensors = {t.name: t for t in graph.initializer}
    uses: dict[str, set[tuple[str, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, set()).add((node.op_type, index))
    # int8 tensors that nothing but MatMulInteger reads, as a weight or its zero point: judged
    # once, before any is rewritten, so a weight shared by two products is shifted once.
    plain = {
        name
        for name, tensor in tensors.items()
        if tensor.data_type == TensorProto.INT8
        and uses.get(name, set()) <= {("MatMulInteger", 1), ("MatMulInteger", 3)}
    }
    shifted: set[str] = set()
    products = 0
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        zero_point = node.input[3] if len(node.input) > 3 and node.input[3] else None
        names = [node.input[1], *([zero_point] if zero_point else [])]
        if not plain.issuperset(names):
            continue
        for name in set(names) - shifted:
            values = numpy_helper.to_array(tensors[name]).astype(np.int16) + 128
            tensors[name].CopyFrom(numpy_helper.from_array(values.astype(np.uint8), name))
            shifted.add(name)
        products += 1
        if zero_point is None:  # the implicit zero point was int8 0: make it uint8 128
            name = f"{node.input[1]}_uint8_zero_point"
            if name not in tensors:
                tensors[name] = numpy_helper.from_array(np.array(128, dtype=np.uint8), name)
                graph.initializer.append(tensors[name])
            node.input.extend([""] * (3 - len(node.input)) + [name])
    return products


def _fingerprint(model_dir: Path) -> str:
    """Changes when the model's weights or config change, so a stale export is never reused."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def check_mean_pooling(model_dir: Path) -> None:
    """Only mean-pooled models are supported here (all-MiniLM and most sentence-transformers)."""
    config = model_dir / "1_Pooling" / "config.json"
    try:
        pooling = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"backend onnx/openvino needs a sentence-transformers model with a pooling config "
            f"({config}): {exc}; use RAG_EMBEDDER__BACKEND=torch"
        ) from exc
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ModelLoadError(
            f"backend onnx/openvino supports mean pooling only, and {model_dir} uses another; "
            "use RAG_EMBEDDER__BACKEND=torch"
        )


def max_seq_length(model_dir: Path) -> int | None:
    """The word pieces the model was trained to read (sentence-transformers' own config)."""
    try:
        value = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(value) if value else None


def export(model_dir: Path, cache_dir: Path, quantize: bool) -> Path:
    """The ONNX file for this model (int8 or fp32), exported on first use and cached by fingerprint."""
    target_dir = cache_dir / f"{model_dir.name}-{_fingerprint(model_dir)}"
    fp32 = target_dir / "model.onnx"
    int8 = target_dir / "model_int8.onnx"
    wanted = int8 if quantize else fp32
    if wanted.is_file():
        return wanted
    target_dir.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        _export_fp32(model_dir, fp32)
    if quantize and not int8.is_file():
        _quantize(fp32, int8)
    return wanted


def _atomic(target: Path) -> Path:
    """A temporary sibling to write into; os.replace then publishes it whole."""
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(fd)
    # mkstemp's 0600 would hide the export from other users: the image makes it as root at build
    # time and runs as uid 10001. A model export is no secret.
    Path(name).chmod(0o644)
    return Path(name)


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    log.info("exporting the embedder %s to ONNX (once) at %s", model_dir, target)
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    transformer: Any = st[0].auto_model
    transformer.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = st.tokenizer(
        ["an example", "a slightly longer example"], padding=True, return_tensors="pt"
    )
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    partial = _atomic(target)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(),
                tuple(sample[name] for name in _INPUTS),
                str(partial),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed, proven on BERTs
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _quantize(fp32: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime.quantization imports `onnx`
        raise ModelLoadError(
            "the ONNX export needs the `onnx` package (a rag-server dependency): pip install onnx"
        ) from exc
    log.info("quantizing the embedder to int8 (once) at %s", target)
    partial = _atomic(target)
    try:
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


class OnnxEncoder:
    """Tokenize, run the exported transformer, mean-pool, normalise: what sentence-transformers does."""

    def __init__(self, onnx_file: Path, model_dir: Path, runtime: Runtime, max_tokens: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.max_tokens = max_tokens
        self.runtime = runtime
        if runtime == "onnx":
            session = ort_session(onnx_file)
            self._names = [i.name for i in session.get_inputs()]
            self._run: Callable[[dict[str, np.ndarray]], Any] = lambda feeds: session.run(
                None, feeds
            )[0]
        else:
            try:
                import openvino as ov
            except ImportError as exc:
                raise ModelLoadError(
                    "RAG_EMBEDDER__BACKEND=openvino needs `pip install 'rag-server[openvino]'`"
                ) from exc
            compiled = ov.Core().compile_model(
                str(onnx_file), "CPU", {"INFERENCE_NUM_THREADS": usable_cores()}
            )
            self._names = [next(iter(i.get_names())) for i in compiled.inputs]
            self._run = lambda feeds: compiled(feeds)[0]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Normalised float32 vectors, in input order; longest first so batches pad little."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), 0), dtype=np.float32)
        parts: list[np.ndarray] = []
        for lo in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[lo : lo + batch_size]]
            enc = self.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
            feeds = {
                name: np.asarray(enc[name], dtype=np.int64) for name in self._names if name in enc
            }
            if "token_type_ids" in self._names and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            hidden = np.asarray(self._run(feeds), dtype=np.float32)
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            parts.append(pooled / norms)
        if not parts:
            return out
        vectors = np.concatenate(parts)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result
