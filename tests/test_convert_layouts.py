"""The conventions table and its pure helpers (rnnkit.convert.layouts); no framework needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.convert.layouts import (
    CANONICAL_GATES,
    LAYOUTS,
    assign_params,
    biases_from,
    biases_to,
    conventions_table,
    from_canonical,
    merge_xh_kernel,
    permute_gates,
    split_xh_kernel,
    to_canonical,
)
from rnnkit.errors import ConversionError, ShapeError

H = 2


def labelled(order: tuple[str, ...], columns: int = 3) -> np.ndarray:
    """Rows of gate block g filled with the gate's index in ``order`` plus a per-row offset, so blocks are traceable."""
    return np.concatenate([np.full((H, columns), 10.0 * k) + np.arange(H)[:, None] for k in range(len(order))])


@pytest.mark.parametrize("framework", ["keras", "onnx", "tf1"])
@pytest.mark.parametrize("family", ["gru", "lstm"])
def test_permutation_puts_each_named_block_in_place_and_inverts(framework, family):
    stored = LAYOUTS[framework].gates[family]
    canonical = to_canonical(labelled(stored), framework, family)
    for k, gate in enumerate(CANONICAL_GATES[family]):  # block k of the result is the stored block named `gate`
        np.testing.assert_array_equal(canonical[k * H : (k + 1) * H], labelled(stored)[stored.index(gate) * H :][:H])
    np.testing.assert_array_equal(from_canonical(canonical, framework, family), labelled(stored))


def test_known_orders_from_the_frameworks_docs():
    assert LAYOUTS["torch"].gates == CANONICAL_GATES
    assert LAYOUTS["keras"].gate_names["lstm"] == ("i", "f", "c", "o")
    assert LAYOUTS["keras"].gate_names["gru"] == ("z", "r", "h")
    assert LAYOUTS["onnx"].gate_names["lstm"] == ("i", "o", "f", "c") and LAYOUTS["onnx"].peepholes == ("w_ci", "w_co", "w_cf")
    assert LAYOUTS["tf1"].gate_names["lstm"] == ("i", "j", "f", "o")


def test_permute_on_bias_axis():
    b = np.arange(6.0)  # keras GRU bias blocks z, r, n of size 2
    np.testing.assert_array_equal(permute_gates(b, ("z", "r", "n"), ("r", "z", "n"), axis=-1), [2, 3, 0, 1, 4, 5])
    with pytest.raises(ShapeError, match=r"3 gate blocks .* has shape \(7,\)"):
        permute_gates(np.arange(7.0), ("z", "r", "n"), ("r", "z", "n"))


@pytest.mark.parametrize("layout", ["stacked", "concat"])
def test_two_bias_layouts_round_trip(layout):
    rng = np.random.default_rng(0)
    b_ih, b_hh = rng.standard_normal(6), rng.standard_normal(6)
    back = biases_from(layout, biases_to(layout, b_ih, b_hh), 6)
    np.testing.assert_array_equal(back[0], b_ih)
    np.testing.assert_array_equal(back[1], b_hh)


def test_single_bias_keeps_the_sum():
    rng = np.random.default_rng(1)
    b_ih, b_hh = rng.standard_normal(8), rng.standard_normal(8)
    new_ih, new_hh = biases_from("single", biases_to("single", b_ih, b_hh), 8)
    np.testing.assert_allclose(new_ih + new_hh, b_ih + b_hh)
    assert not new_hh.any()
    with pytest.raises(ShapeError, match=r"must have shape \(8,\), got \(2, 8\)"):
        biases_from("single", np.zeros((2, 8)), 8)


def test_xh_kernel_split_and_merge():
    rng = np.random.default_rng(2)
    W_ih, W_hh = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    kernel = merge_xh_kernel(W_ih, W_hh)  # (D+R, 4H)
    x, h = rng.standard_normal(3), rng.standard_normal(2)
    np.testing.assert_allclose(np.concatenate([x, h]) @ kernel, W_ih @ x + W_hh @ h)
    for a, b in zip(split_xh_kernel(kernel, 3), (W_ih, W_hh)):
        np.testing.assert_array_equal(a, b)


def test_assign_params_errors():
    params = {"W": np.zeros((2, 3), np.float32)}
    with pytest.raises(ConversionError, match=r"src: parameters do not match: missing \['W'\], unexpected \['V'\]"):
        assign_params(params, {"V": np.zeros((2, 3))}, "src")
    with pytest.raises(ShapeError, match=r"src: parameter 'W' has shape \(3, 2\), rnnkit expects \(2, 3\)"):
        assign_params(params, {"W": np.zeros((3, 2))}, "src")


def test_docs_embed_the_generated_table():
    docs = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
    assert conventions_table() in docs.read_text(encoding="utf-8")
