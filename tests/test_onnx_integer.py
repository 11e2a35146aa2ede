"""int8 models compute the same on every x86 CPU: ONNX Runtime's uint8 x int8 kernel without VNNI
(AVX2) saturates its 16-bit pair sums, so there `ort_session` stores MatMulInteger weights as uint8.

The products are compared with numpy's exact integer ones over the full input range, where the
saturating kernel is wrong in nearly every output (on an AVX2 machine; a VNNI one is exact either
way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rag_core.embedding_onnx import int8_products_saturate, ort_session, unsigned_int8_weights
from rag_server.answer_scorer import PACKAGED

ROWS, DEPTH, COLUMNS = 16, 384, 256


def _model(
    path: Path, weights: np.ndarray, zero_point: np.ndarray | None, dequantize: bool
) -> Path:
    """One MatMulInteger of uint8 input by int8 weights; optionally the weights also read by a
    DequantizeLinear (as a quantized embedding table is), which must keep them int8."""
    inputs = ["A", "B", "a_zero"] + (["b_zero"] if zero_point is not None else [])
    nodes = [helper.make_node("MatMulInteger", inputs, ["Y"])]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.INT32, [ROWS, COLUMNS])]
    initializers = [
        numpy_helper.from_array(weights, "B"),
        numpy_helper.from_array(np.array(0, dtype=np.uint8), "a_zero"),
    ]
    if zero_point is not None:
        initializers.append(numpy_helper.from_array(zero_point, "b_zero"))
    if dequantize:
        nodes.append(helper.make_node("DequantizeLinear", ["B", "scale"], ["W"]))
        outputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [DEPTH, COLUMNS]))
        initializers.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "scale"))
    graph = helper.make_graph(
        nodes,
        "matmul",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [ROWS, DEPTH])],
        outputs,
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.fixture
def operands() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return (
        rng.integers(0, 256, (ROWS, DEPTH), dtype=np.uint8),
        rng.integers(-128, 128, (DEPTH, COLUMNS), dtype=np.int8),
    )


@pytest.mark.parametrize("zero_point", ["per column", "absent"])
def test_int8_weights_multiply_exactly(
    tmp_path: Path, operands: tuple[np.ndarray, np.ndarray], zero_point: str
) -> None:
    a, b = operands
    zeros = np.arange(COLUMNS, dtype=np.int64) % 7 - 3
    zp = zeros.astype(np.int8) if zero_point == "per column" else None
    session = ort_session(_model(tmp_path / "m.onnx", b, zp, dequantize=False))
    (product,) = session.run(None, {"A": a})
    expected = a.astype(np.int64) @ (b.astype(np.int64) - (zeros if zp is not None else 0))
    assert np.array_equal(product, expected)


def test_weights_read_by_another_operator_stay_int8(
    tmp_path: Path, operands: tuple[np.ndarray, np.ndarray]
) -> None:
    """The rewrite is only for weights that nothing but MatMulInteger reads; a DequantizeLinear
    of the same tensor must still see the int8 values."""
    a, b = operands
    path = _model(tmp_path / "m.onnx", b, None, dequantize=True)
    model = onnx.load(path)
    assert unsigned_int8_weights(model) == 0
    assert model.graph.initializer[0].data_type == TensorProto.INT8
    _product, table = ort_session(path).run(None, {"A": a})
    assert np.array_equal(table, b.astype(np.float32) * 0.5)


def test_every_weight_of_the_packaged_answer_scorer_is_rewritten() -> None:
    model = onnx.load(PACKAGED / "model.onnx")
    products = [n for n in model.graph.node if n.op_type == "MatMulInteger"]
    assert products and unsigned_int8_weights(model) == len(products)
    tensors = {t.name: t for t in model.graph.initializer}
    assert {tensors[n.input[1]].data_type for n in products} == {TensorProto.UINT8}
    assert {tensors[n.input[3]].data_type for n in products} == {TensorProto.UINT8}


@pytest.mark.parametrize(
    ("flags", "saturate"),
    [
        ("fpu sse2 avx avx2 fma bmi2", True),  # AVX2: VPMADDUBSW
        ("fpu avx2 avx512f avx512bw", True),  # AVX-512 without VNNI: the same
        ("fpu avx2 avx512f avx512_vnni", False),
        ("fpu avx2 avx_vnni", False),
        ("fpu avx2 avx512f amx_int8 amx_tile", False),
    ],
)
def test_the_rewrite_is_for_cpus_without_vnni(tmp_path: Path, flags: str, saturate: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    )
    assert int8_products_saturate(cpuinfo) is saturate
    assert int8_products_saturate(tmp_path / "absent") is True  # unknown CPU: rewrite, to be safe
