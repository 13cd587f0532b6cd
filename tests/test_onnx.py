"""ONNX export (lenet_fast.onnx_export, LeNet5.to_onnx, lenet-fast export), checked by
onnxruntime, an independent runtime, on the 10,000 MNIST test digits for both presets."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='onnx not installed (pip install "lenet-fast[onnx]")')

from interop_models import trained  # noqa: E402
from lenet_fast import LeNet5, LECUN_C3_TABLE, cli  # noqa: E402
from lenet_fast.datasets import preprocess  # noqa: E402
from lenet_fast.onnx_export import IR_VERSION, OPSET, build_onnx  # noqa: E402

#: The issue's bound on |onnxruntime output - LeNet5.forward| (logits or distances).
ATOL = 1e-4


def _initializers(proto):
    return {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_graph_structure(variant):
    model = LeNet5(variant, seed=1)
    proto = build_onnx(model)
    assert proto.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    onnx.checker.check_model(proto, full_check=True)
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "images" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 28, 28]
    first = "logits" if variant == "modern" else "distances"
    assert [o.name for o in proto.graph.output] == [first, "probabilities"]
    ops = {n.op_type for n in proto.graph.node}
    init = _initializers(proto)
    # C3 with LeCun's table: a dense Conv whose unconnected weights are exactly zero
    w3 = init["c3.weight"]
    assert w3.shape == (16, 6, 5, 5)
    assert np.all(w3[~LECUN_C3_TABLE.T] == 0) and np.all(w3[LECUN_C3_TABLE.T] != 0)
    if variant == "modern":
        assert {"Conv", "Relu", "MaxPool", "Gemm", "Softmax"} <= ops and "Tanh" not in ops
    else:
        assert {"Conv", "Tanh", "ReduceSum", "Softmax"} <= ops and "MaxPool" not in ops
        for s, maps in (("s2", 6), ("s4", 16)):   # depthwise 2x2 stride-2 conv: coef and bias
            node = next(n for n in proto.graph.node if n.name == s)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert node.op_type == "Conv" and attrs["group"] == maps and attrs["strides"] == [2, 2]
            np.testing.assert_array_equal(init[f"{s}.weight"],
                                          np.broadcast_to(model.params[f"{s}.coef"][:, None, None, None],
                                                          (maps, 1, 2, 2)))
            np.testing.assert_array_equal(init[f"{s}.bias"], model.params[f"{s}.bias"])
        np.testing.assert_array_equal(init["rbf.centers"], model.rbf_centers)
    assert "lenet_fast.config" in {p.key for p in proto.metadata_props}


def test_weights_are_copies():
    model = LeNet5("modern", seed=0)
    proto = build_onnx(model)
    before = _initializers(proto)["c1.weight"].copy()
    model.params["c1.weight"] = np.zeros((6, 1, 5, 5), np.float32)
    np.testing.assert_array_equal(_initializers(proto)["c1.weight"], before)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_onnxruntime_matches_forward_on_test_set(variant, mnist_test, tmp_path, record_property):
    ort = pytest.importorskip("onnxruntime", reason='onnxruntime not installed '
                              '(pip install "lenet-fast[onnx]")')
    images, labels = mnist_test
    model = trained(variant)
    reference = model.forward(preprocess(images))
    proba = model.predict_proba(images)
    predictions = model.predict(images)
    assert (predictions == labels).mean() > 0.85          # a trained, meaningful model
    for pre in (True, False):
        path = tmp_path / f"{variant}-{pre}.onnx"
        model.to_onnx(path, preprocess=pre)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = images if pre else preprocess(images)
        out, p = session.run(None, {session.get_inputs()[0].name: feed})
        assert out.shape == (10000, 10) and out.dtype == np.float32
        diff = float(np.abs(out - reference).max())
        record_property(f"max_abs_diff_{variant}_preprocess_{pre}", diff)
        assert diff < ATOL, f"{variant}: max |onnx - forward| = {diff}"
        np.testing.assert_array_equal(p.argmax(axis=1), predictions)
        np.testing.assert_allclose(p, proba, atol=1e-5)
        # dynamic batch: one digit at a time gives the same
        one, _ = session.run(None, {session.get_inputs()[0].name: feed[:1]})
        np.testing.assert_allclose(one, out[:1], atol=ATOL)


def test_full_c3_and_bad_input(mnist_test, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    images, _ = mnist_test
    model = LeNet5("modern", c3="full", seed=2)
    model.to_onnx(tmp_path / "full.onnx")
    session = ort.InferenceSession(str(tmp_path / "full.onnx"), providers=["CPUExecutionProvider"])
    out, _ = session.run(None, {"images": images[:500]})
    assert np.abs(out - model.forward(preprocess(images[:500]))).max() < ATOL
    with pytest.raises(Exception, match=r"expected: \(tensor\(uint8\)\)"):  # refused by the runtime
        session.run(None, {"images": images[:5].astype(np.float32)})


def test_cli_export(mnist_test, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    images, _ = mnist_test
    model = trained("lecun98")
    model.save(tmp_path / "m.npz")
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")]) == 0
    assert "'distances', 'probabilities'" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    _, p = session.run(None, {"images": images[:1000]})
    np.testing.assert_array_equal(p.argmax(axis=1), model.predict(images[:1000]))
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "raw.onnx"),
                     "--no-preprocess"]) == 0
    session = ort.InferenceSession(str(tmp_path / "raw.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input"
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.txt")]) == 2
    assert "extensions" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "x.onnx")]) == 1
