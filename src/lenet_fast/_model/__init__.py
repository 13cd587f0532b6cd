"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to
Document Recognition", Proc. IEEE 86(11)) on the fast kernels.

Two presets:

``"modern"`` (default), LeNet-5 as it is usually taught:
    C1 6@5x5 -> ReLU -> 2x2 max -> C3 16@5x5 (LeCun's table, or dense) -> ReLU -> 2x2 max
    -> C5 120@5x5 -> ReLU -> F6 84 -> ReLU -> 10-way linear -> softmax cross-entropy.
    He initialisation, zero biases.

``"lecun98"``, the paper:
    C1 -> f -> S2 -> f -> C3 (Table I) -> f -> S4 -> f -> C5 -> f -> F6 -> f -> RBF,
    f(a) = 1.7159 tanh(2a/3); S2/S4 trainable subsampling (coef * 2x2 sum + bias);
    RBF output y_i = sum_j (x_j - c_ij)^2 against fixed +-1 7x12 codes
    (`lenet_fast.model.RBF_CODES`); the MAP loss of eq. 9 with j = `MAP_J`; weights and biases
    initialised U(-2.4/F, 2.4/F), F the unit's fan-in, as printed in the paper (``init``,
    below). 60,000 trainable parameters.

Initialisation (``init``): "he" (normal, std sqrt(2/F), zero biases; the modern
default), "fanin" (U(-2.4/F, 2.4/F), the formula as printed in the paper's appendix A;
the lecun98 default) or "fanin-sqrt" (U(-2.4/sqrt(F), 2.4/sqrt(F))), for SDLM. The
paper gives as its motivation that "the standard deviation of the
weighted sums [be] in the same range for each unit, and ... within the normal operating
region of the sigmoid"; only the square root does that (the sum of F unit-variance
inputs has std 1.39 for every unit), while 2.4/F leaves C5 and F6 sums at std ~0.03.
With "fanin" the paper's SDLM step sizes saturate the network within a few samples
and smaller steps train to a higher error than the paper's; with "fanin-sqrt" SDLM
trains to about the paper's error (`lenet_fast.optim` gives the reasons). Adam (the
lecun98 default recipe of ``lenet-fast train``) trains better from "fanin", hence
that default.

All parameters live in one contiguous float32 vector (`model.flat_params`), and all
gradients in another (`model.flat_grads`); `model.params` and the grads dict are
views into them, so an optimizer updates everything in one vectorized step. A plan
(`lenet_fast._isa.kernels`, its `Plan`) runs the forward pass, the loss and the backward pass as one
compiled call and one parallel region over blocks of samples, with the same kernels as
`lenet_fast.ops`. Each call takes its activation memory from a pool the model keeps
(one block per thread), so one model may be called from several Python threads at once.
"""

from .lenet5 import MAP_J, LeNet5, load
from ._runtime import softmax

__all__ = ["LeNet5", "load", "softmax", "MAP_J"]
