"""PyTorch interop: `to_torch(model)` gives a ``torch.nn.Module`` with the same weights,
`from_torch(module_or_state_dict)` gives a `LeNet5` back.

::

    from lenet_fast.torch import to_torch, from_torch
    net = to_torch(model)                       # LeNet5Torch: c1, c3, c5, f6, out (+ s2, s4)
    logits = net(torch.from_numpy(preprocess(digits)))   # = model.forward(...)
    ...fine-tune net with any torch optimizer...
    model = from_torch(net)

Needs PyTorch 2.0+ (``pip install "lenet-fast[torch]"``; on a machine without a GPU,
a CPU build first: on this project's machines ``pip install torch==2.13.0``).

The module mirrors `LeNet5` layer for layer, and its ``state_dict`` keys are
`LeNet5.params`' names: ``c1.weight``, ``c1.bias``, ``c3.weight``, ..., ``f6.bias``, and
``out.weight``, ``out.bias`` (modern) or ``s2.coef``, ``s2.bias``, ``s4.coef``,
``s4.bias`` (lecun98). c1, c3, c5 are ``nn.Conv2d`` (c3 `MaskedConv2d` with LeCun's
table), f6 and modern's out ``nn.Linear``; lecun98 has its own small modules:
`ScaledTanh` (1.7159 tanh(2a/3)), `Subsampling` (coef x 2x2 sum + bias, per map) and
`RBF` (y_i = sum_j (x_j - c_ij)^2 against the fixed codes, a buffer outside the
state_dict). ``forward`` takes float32 (N, 1, 32, 32) (`lenet_fast.datasets.preprocess`)
and returns `LeNet5.forward`'s (N, 10): logits (modern) or RBF distances (lecun98).

Weights are copied both ways: the module never shares memory with the model's
parameter vector, nor the model with the module's tensors.

C3's unconnected weights stay zero under fine-tuning: `MaskedConv2d` convolves with
``weight * mask`` (the mask is LeCun's table, a non-persistent buffer), so the gradient
of every unconnected weight is exactly zero; its stored value starts at zero and any
optimizer leaves a zero weight with zero gradient at zero (SGD with momentum and
weight decay, Adam, AdamW: each update of it is a multiple of the weight and its
gradient). `from_torch` keeps only the connected weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError('lenet_fast.torch needs PyTorch 2.0+: pip install "lenet-fast[torch]" '
                      '(without a GPU, install a CPU build of torch first)') from exc

from .._compute.codes import RBF_CODES
from .._compute.tables import C3_CHOICES, LECUN_C3_TABLE, TANH_A, TANH_S, VARIANTS
from .._model.lenet5 import LeNet5

__all__ = ["LeNet5Torch", "MaskedConv2d", "ScaledTanh", "Subsampling", "RBF", "to_torch",
           "from_torch"]


class ScaledTanh(nn.Module):
    """LeCun's squashing function f(a) = 1.7159 tanh(2a/3).

    Parameters
    ----------
    *args, **kwargs
        Passed to ``torch.nn.Module`` (none are needed).
    """

    def forward(self, x):
        """f(x), elementwise.

        Parameters
        ----------
        x : torch.Tensor
            Any shape.

        Returns
        -------
        torch.Tensor
            The shape of `x`.
        """
        return TANH_A * torch.tanh(TANH_S * x)


class Subsampling(nn.Module):
    """LeCun's trainable subsampling: coef[c] x (sum of each 2x2 block) + bias[c].

    Its parameters are ``coef`` and ``bias``, (channels,) each.

    Parameters
    ----------
    channels : int
        The number of maps C.
    """

    def __init__(self, channels):
        super().__init__()
        self.coef = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        """Subsample `x`.

        Parameters
        ----------
        x : torch.Tensor
            float32 (N, C, H, W), H and W even.

        Returns
        -------
        torch.Tensor
            float32 (N, C, H/2, W/2).
        """
        block_sum = F.avg_pool2d(x, 2) * 4.0          # exact: scaling by 4 and back
        return block_sum * self.coef[:, None, None] + self.bias[:, None, None]


class RBF(nn.Module):
    """Euclidean RBF output: y_i = sum_j (x_j - c_ij)^2, centres fixed.

    Parameters
    ----------
    centers : array-like
        float32 (10, 84): the codes (a buffer that is not part of the state_dict).
    """

    def __init__(self, centers):
        super().__init__()
        self.register_buffer("centers", torch.tensor(np.asarray(centers, np.float32)),
                             persistent=False)

    def forward(self, x):
        """The squared distances of `x` to the centres.

        Parameters
        ----------
        x : torch.Tensor
            float32 (N, 84).

        Returns
        -------
        torch.Tensor
            float32 (N, 10).
        """
        return ((x[:, None, :] - self.centers) ** 2).sum(dim=2)


class MaskedConv2d(nn.Conv2d):
    """A 5x5 convolution over a connection table: convolves with ``weight * mask``.

    ``mask`` (out, in, 1, 1) float32 is 1 where input map i feeds output map j
    (``table[i, j]``), a buffer outside the state_dict. The gradient of each masked
    weight is exactly zero, so fine-tuning leaves those weights at zero.

    Parameters
    ----------
    table : array-like of bool
        (in, out): the connection table, e.g. `lenet_fast.LECUN_C3_TABLE`.
    """

    def __init__(self, table):
        table = np.asarray(table, dtype=bool)
        super().__init__(table.shape[0], table.shape[1], 5)
        self.register_buffer("mask", torch.tensor(table.T[:, :, None, None].astype(np.float32)),
                             persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x):
        """The convolution with the masked weights.

        Parameters
        ----------
        x : torch.Tensor
            float32 (N, in, H, W).

        Returns
        -------
        torch.Tensor
            float32 (N, out, H - 4, W - 4).
        """
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class LeNet5Torch(nn.Module):
    """`LeNet5` as a ``torch.nn.Module`` (module docstring); build it with `to_torch`.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
    c3 : {"lecun", "full"}

    Attributes
    ----------
    c1, c3, c5 : nn.Conv2d (c3: MaskedConv2d for c3="lecun")
    s2, s4 : Subsampling (lecun98) or nn.MaxPool2d(2) (modern)
    f6 : nn.Linear(120, 84)
    out : nn.Linear(84, 10) (modern) or RBF (lecun98)
    act : nn.ReLU (modern) or ScaledTanh (lecun98)
    config : dict
        The `LeNet5.config()` this module was made from (`from_torch` restores it).
    """

    def __init__(self, variant="modern", c3="lecun"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if c3 not in C3_CHOICES:
            raise ValueError(f"c3 must be one of {C3_CHOICES}, got {c3!r}")
        self.variant = variant
        self.config = {"variant": variant, "c3": c3, "seed": 0, "init": "auto"}
        modern = variant == "modern"
        # registered in the order of LeNet5.params, so state_dict() lists them alike
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = nn.MaxPool2d(2) if modern else Subsampling(6)
        self.c3 = MaskedConv2d(LECUN_C3_TABLE) if c3 == "lecun" else nn.Conv2d(6, 16, 5)
        self.s4 = nn.MaxPool2d(2) if modern else Subsampling(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, 10) if modern else RBF(RBF_CODES)
        self.act = nn.ReLU() if modern else ScaledTanh()

    def forward(self, x):
        """The network's output, as `LeNet5.forward` computes it.

        Parameters
        ----------
        x : torch.Tensor
            float32 (N, 1, 32, 32), preprocessed (`lenet_fast.datasets.preprocess`).

        Returns
        -------
        torch.Tensor
            float32 (N, 10): logits (modern) or RBF distances (lecun98).
        """
        f = self.act
        if self.variant == "modern":   # relu and max pooling commute
            h = self.s2(f(self.c1(x)))
            h = self.s4(f(self.c3(h)))
        else:
            h = f(self.s2(f(self.c1(x))))
            h = f(self.s4(f(self.c3(h))))
        h = f(self.c5(h)).flatten(1)
        return self.out(f(self.f6(h)))


def to_torch(model):
    """A `LeNet5Torch` holding a copy of `model`'s weights (float32, on the CPU).

    Parameters
    ----------
    model : lenet_fast.LeNet5

    Returns
    -------
    LeNet5Torch
        In training mode, as any new module; call ``.eval()`` for inference (the network
        has no dropout or batch norm, so both modes compute the same).
    """
    module = LeNet5Torch(model.variant, model.c3)
    module.config = dict(model.config())
    state = {name: torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
             for name, value in model.params.items()}
    module.load_state_dict(state, strict=True)
    return module


def _infer_variant(keys):
    if "s2.coef" in keys:
        return "lecun98"
    if "out.weight" in keys:
        return "modern"
    raise ValueError("cannot tell the variant of this state_dict (neither out.weight nor "
                     "s2.coef); pass variant=")


def from_torch(module_or_state_dict, variant=None, *, c3=None):
    """A `LeNet5` holding a copy of a torch module's (or state_dict's) weights.

    Parameters
    ----------
    module_or_state_dict : LeNet5Torch, torch.nn.Module or mapping of name -> tensor
        Keys must be exactly `LeNet5.params`' names for the variant (as `to_torch`
        makes them); floating tensors of the right shapes, on any device (they are
        converted to float32 on the CPU).
    variant : {"modern", "lecun98"} or None
        None: the module's, else told from the keys.
    c3 : {"lecun", "full"} or None
        None: the module's; for a plain state_dict, "lecun" when every weight outside
        LeCun's table is exactly zero, else "full". With "lecun", weights outside the
        table must be zero (a `MaskedConv2d` ignores them: they are dropped).

    Returns
    -------
    lenet_fast.LeNet5
        With the module's configuration (seed and init) when it came from `to_torch`.

    Raises
    ------
    ValueError
        Missing or unexpected keys, wrong shapes, non-finite values, a variant that
        does not match, or non-zero weights outside LeCun's table with c3="lecun".
    TypeError
        Not a module or a mapping, or non-floating tensors.
    """
    config, masked = {}, False
    if isinstance(module_or_state_dict, nn.Module):
        state = module_or_state_dict.state_dict()
        config = dict(getattr(module_or_state_dict, "config", {}))
        masked = isinstance(getattr(module_or_state_dict, "c3", None), MaskedConv2d)
        if c3 is None and masked:
            c3 = "lecun"
    elif isinstance(module_or_state_dict, Mapping):
        state = module_or_state_dict
    else:
        raise TypeError("from_torch takes a torch.nn.Module or a state_dict, not "
                        f"{type(module_or_state_dict).__name__}")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        arrays[name] = value.detach().to("cpu", torch.float32).numpy().copy()
    if variant is None:
        variant = config.get("variant") or _infer_variant(arrays)
    elif config.get("variant", variant) != variant:
        raise ValueError(f"the module is a {config['variant']} network, not {variant}")
    table_mask = LECUN_C3_TABLE.T[:, :, None, None]
    w3 = arrays.get("c3.weight")
    outside = None if w3 is None or w3.shape != (16, 6, 5, 5) else np.any(w3 * ~table_mask != 0)
    if c3 is None:
        c3 = config.get("c3") or ("full" if outside else "lecun")
    if c3 == "lecun" and outside and not masked:
        raise ValueError("c3.weight has non-zero weights outside LeCun's connection table; "
                         "give c3='full' for a dense C3")
    model = LeNet5(variant, c3=c3, seed=config.get("seed", 0), init=config.get("init", "auto"))
    names = set(model.params)
    if set(arrays) != names:
        missing, extra = sorted(names - set(arrays)), sorted(set(arrays) - names)
        raise ValueError(f"state_dict does not match a {variant}/{c3} LeNet-5: missing "
                         f"{missing}, unexpected {extra}")
    for name in names:
        value = arrays[name]
        if value.shape != model.params[name].shape:
            raise ValueError(f"{name} has shape {value.shape}, expected "
                             f"{model.params[name].shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains non-finite values")
        if name == "c3.weight" and c3 == "lecun":
            value = value * table_mask
        model.params[name] = value
    return model
