"""lenet_fast.torch: to_torch / from_torch on trained models of both presets, outputs on
the 10,000 test digits, exact round trips, copies, and fine-tuning with C3's
unconnected weights kept at zero."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='PyTorch not installed (pip install torch==2.13.0, '
                            'a CPU build, or "lenet-fast[torch]")')

from interop_models import trained  # noqa: E402
from lenet_fast import LECUN_C3_TABLE, LeNet5  # noqa: E402
from lenet_fast.datasets import preprocess  # noqa: E402
from lenet_fast.torch import LeNet5Torch, MaskedConv2d, from_torch, to_torch  # noqa: E402

UNCONNECTED = torch.from_numpy(~LECUN_C3_TABLE.T)   # (16, 6): C3 map pairs without a connection


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_outputs_match_on_test_set(variant, mnist_test):
    images, labels = mnist_test
    model = trained(variant)
    x = preprocess(images)
    reference = model.forward(x)
    net = to_torch(model).eval()
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    assert out.shape == (10000, 10) and out.dtype == np.float32
    # float32 tolerance: relative to the outputs' range (lecun98 distances reach ~200)
    scale = float(np.abs(reference).max())
    assert np.abs(out - reference).max() <= 1e-6 * scale * 10
    pred = out.argmax(axis=1) if variant == "modern" else out.argmin(axis=1)
    np.testing.assert_array_equal(pred, model.predict(images))
    assert (pred == labels).mean() > 0.85


@pytest.mark.parametrize("variant,c3", [("modern", "lecun"), ("modern", "full"),
                                        ("lecun98", "lecun")])
def test_round_trip_is_exact(variant, c3):
    model = LeNet5(variant, c3=c3, seed=5, init="fanin-sqrt" if variant == "lecun98" else "auto")
    net = to_torch(model)
    assert list(net.state_dict()) == list(model.params)        # the model's names, nothing else
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.params[name])
    back = from_torch(net)
    np.testing.assert_array_equal(back.flat_params, model.flat_params)
    assert back.config() == model.config()
    from_state = from_torch(net.state_dict(), variant=variant)   # variant and c3 from the keys/zeros
    np.testing.assert_array_equal(from_state.flat_params, model.flat_params)
    assert (from_state.variant, from_state.c3) == (variant, c3)
    assert isinstance(net.c3, MaskedConv2d) == (c3 == "lecun")


def test_weights_are_copies():
    model = LeNet5("lecun98", seed=0)
    net = to_torch(model)
    before = model.flat_params.copy()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(model.flat_params, before)
    back = from_torch(net)
    kept = back.flat_params.copy()
    with torch.no_grad():
        net.c1.weight.zero_()
    np.testing.assert_array_equal(back.flat_params, kept)
    model.params["f6.bias"] = np.full(84, 3.0, np.float32)
    assert not torch.equal(net.f6.bias, torch.full((84,), 3.0))


@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    lambda ps: torch.optim.Adam(ps, lr=1e-3),
    lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.1),
], ids=["sgd", "adam", "adamw"])
@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_fine_tuning_keeps_c3_sparse(variant, make_opt, mnist_train, mnist_test):
    images, labels = mnist_train
    test_images, _ = mnist_test
    model = trained(variant)
    net = to_torch(model)
    opt = make_opt(net.parameters())
    x = torch.from_numpy(preprocess(images[5000:5256]))
    y = torch.from_numpy(labels[5000:5256].astype(np.int64))
    start = net.c3.weight.detach().clone()
    for step in range(4):
        opt.zero_grad()
        out = net(x[step * 64:(step + 1) * 64])
        scores = out if variant == "modern" else -out
        torch.nn.functional.cross_entropy(scores, y[step * 64:(step + 1) * 64]).backward()
        assert torch.all(net.c3.weight.grad[UNCONNECTED] == 0)
        opt.step()
    w = net.c3.weight.detach()
    assert torch.all(w[UNCONNECTED] == 0)                       # exactly zero after 4 steps
    assert not torch.equal(w[~UNCONNECTED], start[~UNCONNECTED])  # the connected ones trained
    tuned = from_torch(net)                                     # the fine-tuned network
    xt = preprocess(test_images[:500])
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(xt)).numpy()
    np.testing.assert_allclose(tuned.forward(xt), expected, atol=1e-6 * np.abs(expected).max() * 10)
    best = expected.argmax(axis=1) if variant == "modern" else expected.argmin(axis=1)
    np.testing.assert_array_equal(tuned.predict(test_images[:500]), best)


def test_bad_state_dicts():
    net = to_torch(LeNet5("modern", seed=0))
    state = net.state_dict()
    with pytest.raises(ValueError, match="missing"):
        from_torch({k: v for k, v in state.items() if k != "f6.bias"})
    with pytest.raises(ValueError, match="shape"):
        from_torch({**state, "f6.bias": torch.zeros(85)})
    with pytest.raises(ValueError, match="non-finite"):
        from_torch({**state, "c1.bias": torch.full((6,), float("nan"))})
    with pytest.raises(TypeError, match="floating-point"):
        from_torch({**state, "c1.bias": torch.zeros(6, dtype=torch.int64)})
    with pytest.raises(ValueError, match="not lecun98"):
        from_torch(net, variant="lecun98")
    with pytest.raises(ValueError, match="cannot tell the variant"):
        from_torch({"c1.weight": state["c1.weight"]})
    dense = dict(state, **{"c3.weight": torch.ones(16, 6, 5, 5)})
    assert from_torch(dense).c3 == "full"
    with pytest.raises(ValueError, match="outside LeCun's connection table"):
        from_torch(dense, c3="lecun")
    with pytest.raises(TypeError, match="state_dict"):
        from_torch([1, 2, 3])
    with pytest.raises(ValueError, match="variant"):
        LeNet5Torch("resnet")
    # float64 and other devices' tensors are converted; the values survive
    as64 = {k: v.double() for k, v in state.items()}
    np.testing.assert_array_equal(from_torch(as64).flat_params,
                                  from_torch(state).flat_params)
