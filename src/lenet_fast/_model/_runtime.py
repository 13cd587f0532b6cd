"""What a model keeps beside its weights: the parameter dict that keeps its views,
the pool of per-call activation memory and the pacer of training threads."""


import numpy as np

from .._isa import kernels as _kernels
from ._inputs import _as_c


class ParamDict(dict):
    """A dict of parameter views into one flat vector.

    Assigning ``params[name] = array`` copies the values into the existing view (the
    shape must match), so the model and its optimizer keep seeing one vector.
    """

    def __setitem__(self, name, value):
        if name not in self:
            raise KeyError(f"unknown parameter {name!r}; parameters are {list(self)}")
        view = dict.__getitem__(self, name)
        value = np.asarray(value)
        if value.shape != view.shape:
            raise ValueError(f"{name} must have shape {view.shape}, got {value.shape}")
        view[...] = value

    def update(self, *args, **kwargs):
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def setdefault(self, *args):
        raise TypeError("parameters are fixed; assign into existing names")


class _Pacer:
    """Chooses between all threads and one for training passes, from their measured speed.

    When another process holds a core, a thread of ours that shares it is descheduled
    for whole time slices and the others wait for it at the end of the pass: then one
    thread trains faster than two. The pacer keeps, per batch size, a moving average of
    the seconds of a pass with each choice, runs the faster one, and every `PROBE` passes
    tries the other once, so it follows the machine as its load comes and goes. Results
    do not depend on the choice (the passes are thread-count invariant); only speed does.
    """

    PROBE = 32
    ALPHA = 0.25
    #: A pass counts at most CLIP times the running average: one pass that lost a time
    #: slice to another process (a hiccup of a few ms) must not switch the choice; a
    #: neighbour that stays (every pass slow) still does, within three passes.
    CLIP = 2.0

    def __init__(self):
        self._avg = {}
        self._count = 0
        self._probing = False

    def choose(self, n, nt):
        self._count += 1
        many, one = self._avg.get((n, nt)), self._avg.get((n, 1))
        best = 1 if (many is not None and one is not None and one < many) else nt
        self._probing = self._count % self.PROBE == 0 or (
            many is not None and one is None and self._count % self.PROBE == self.PROBE // 2)
        if self._probing:
            return 1 if best == nt else nt
        return best

    def record(self, n, nt, seconds):
        # A probe's time moves the other choice's (stale) average halfway (one lucky
        # probe of the slower choice does not switch to it; two in a row do); the
        # running choice's average moves by ALPHA of each pass, clipped at CLIP times
        # itself.
        key = (n, nt)
        old = self._avg.get(key)
        if old is None:
            self._avg[key] = seconds
        elif self._probing:
            self._avg[key] = 0.5 * (old + min(seconds, self.CLIP * old))
        else:
            self._avg[key] = old + self.ALPHA * (min(seconds, self.CLIP * old) - old)


class _Pool:
    """Reusable scratch memory, safe to share between Python threads.

    `take` hands out an array that no other call holds (a spare one of at least `size`
    floats, or a new one) and `give` returns it. ``list.pop`` and ``list.append`` are
    atomic in CPython, so concurrent calls never get the same array.
    """

    def __init__(self):
        self._spare = []

    def take(self, size):
        try:
            a = self._spare.pop()
        except IndexError:
            return np.empty(size, np.float32)
        return a if a.shape[0] >= size else np.empty(size, np.float32)

    def give(self, a):
        if len(self._spare) < 8:
            self._spare.append(a)


def softmax(scores):
    """Class scores turned into probabilities in place (``exp(s - max) / sum``), by the
    compiled code `LeNet5.predict_proba` runs in its pass: the same bits.

    Parameters
    ----------
    scores : ndarray
        float32 (N, 10), as `LeNet5.scores` returns them.

    Returns
    -------
    ndarray
        `scores` (a copy when it is not C-contiguous), holding the probabilities.
    """
    scores = _as_c(scores)
    if scores.dtype != np.float32 or scores.ndim != 2 or scores.shape[1] != 10:
        raise ValueError(f"scores must be float32 (N, 10), got {scores.dtype} {scores.shape}")
    _kernels.softmax_rows(scores)
    return scores
