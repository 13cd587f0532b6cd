"""Training loop: seeded shuffling, a schedule, evaluation, checkpoints, resume.

The training images stay uint8 (N, 28, 28); each batch goes to the model as digits and
is preprocessed inside the compiled pass, so memory stays near the data set's 47 MB.
"""

import copy
import math
import os
import signal
import threading
import time

import numpy as np

from .._io import checkpoint
from .._io.datasets import check_digits
from .._model._inputs import _check_smoothing
from .metrics import evaluate
from .schedules import make_schedule, schedule_from_config

#: Last word of the seed of the generator passed to ``optimizer.before_epoch``: keeps
#: it apart from the shuffling generator (``SeedSequence([s, 0])`` would equal
#: ``SeedSequence(s)``, trailing zeros do not change the seed).
_EPOCH_HOOK_STREAM = 0x5D1A

#: Last word of the seed the trainer gives its augmenter: (seed, _AUGMENT_STREAM).
_AUGMENT_STREAM = 0xA06


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the model keeps its last good weights."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `Trainer.fit`.

    Parameters
    ----------
    message : str
        What happened, for the user.
    checkpoint : str or None
        The checkpoint saved to resume from (`Trainer.fit` with ``resume=``), or None
        when none was saved. Also the attribute ``checkpoint``.
    """

    def __init__(self, message, checkpoint=None):
        super().__init__(message)
        self.checkpoint = checkpoint


def _check_data(name, data):
    try:
        images, labels = data
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (images, labels)") from None
    images = check_digits(images, f"{name} images")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} labels must be integers of shape ({images.shape[0]},), "
                         f"got {labels.dtype} {labels.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{name} labels must be in 0..9")
    return images, labels


class Trainer:
    """Mini-batch training of a `LeNet5`.

    Parameters
    ----------
    model : LeNet5
    optimizer : lenet_fast.optim.Optimizer
    batch_size : int
    epochs : int
    schedule : str or schedule object
        A name registered in `lenet_fast.schedules.SCHEDULES` ("constant", "step",
        "cosine", "onecycle", "lecun98"; built by `lenet_fast.schedules.make_schedule`
        for the run's length and steps per epoch from the optimizer's learning rate),
        or an object with ``lr_at(step)``.
    schedule_options : dict or None
        With a schedule name: constructor arguments that replace
        `lenet_fast.schedules.make_schedule`'s defaults (e.g. ``{"pct_start": 0.2}``
        for "onecycle"), checked when `fit` builds the schedule.
    seed : int
        Seed of the shuffling. Same seed and data give the same weights, whatever
        the thread count.
    progress : bool
        Show a tqdm progress bar (loss, accuracy, images/s).
    checkpoint_dir : path or None
        Write ``epoch-NNN.npz`` there after every epoch (and ``interrupted.npz`` on
        Ctrl-C).
    interrupt_path : path or None
        Where Ctrl-C saves a checkpoint; default ``checkpoint_dir/interrupted.npz``.
    eval_batch_size : int
        Batch size of the per-epoch evaluation.
    augment : lenet_fast.augment.Affine, Elastic or None
        Random distortions applied to each batch's uint8 images before
        preprocessing. `fit` reseeds it from (seed, a constant) at the start of a
        run, and checkpoints carry its generator state, so a resumed run gets the
        same distortions as an uninterrupted one.
    label_smoothing : float in [0, 1)
        Label smoothing of the modern preset's cross-entropy during training
        (`LeNet5.train_step`); 0 for lecun98.
    pass_images : callable or None
        ``pass_images(epoch) -> uint8 (N, 28, 28)``: the images pass `epoch` (0-based)
        trains on, versions of `fit`'s training digits in the same order (so `fit`'s
        labels hold), e.g. `lenet_fast.augment.FixedDistortions.pass_images` (the
        paper's fixed set of distorted copies). None: `fit`'s images every pass. It
        must give the same images for the same epoch (a resumed run asks again).
    """

    def __init__(self, model, optimizer, *, batch_size=64, epochs=1, schedule="constant",
                 schedule_options=None, seed=0, progress=True, checkpoint_dir=None, interrupt_path=None,
                 eval_batch_size=1000, augment=None, label_smoothing=0.0, pass_images=None):
        for name, value in (("batch_size", batch_size), ("epochs", epochs),
                            ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.model = model
        self.optimizer = optimizer
        self.batch_size = int(batch_size)
        self.epochs = int(epochs)
        self.schedule = schedule
        if schedule_options is not None and not isinstance(schedule, str):
            raise TypeError("schedule_options apply to a schedule given by name")
        self.schedule_options = dict(schedule_options or {})
        self.seed = int(seed)
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        if interrupt_path is None and checkpoint_dir is not None:
            interrupt_path = os.path.join(checkpoint_dir, "interrupted.npz")
        self.interrupt_path = interrupt_path
        self.eval_batch_size = int(eval_batch_size)
        if augment is not None and not (callable(augment) and all(
                hasattr(augment, m) for m in ("state", "set_state", "reseed", "config"))):
            raise TypeError("augment must be an augmenter (lenet_fast.augment.Affine, Elastic) "
                            f"or None, not {type(augment).__name__}")
        self.augment = augment
        if pass_images is not None and not callable(pass_images):
            raise TypeError("pass_images must be a callable (epoch -> images) or None")
        self.pass_images = pass_images
        self.label_smoothing = _check_smoothing(label_smoothing, model.variant)
        self.history = []
        self.last_checkpoint = None
        self.train_seconds = 0.0
        self.train_images = 0

    # ------------------------------------------------------------------
    def _settings(self):
        return {"batch_size": self.batch_size, "epochs": self.epochs, "seed": self.seed,
                "label_smoothing": self.label_smoothing}

    def _save(self, path, schedule, epoch, batch, rng_state):
        state = {"epoch": epoch, "batch": batch, "rng_state": rng_state,
                 "history": self.history, "settings": self._settings(),
                 "train_seconds": self.train_seconds, "train_images": self.train_images}
        if self.augment is not None:
            state["augment"] = {"config": self.augment.config(), "state": self.augment.state()}
        checkpoint.save_training(path, self.model, self.optimizer, schedule, state)
        self.last_checkpoint = os.fspath(path)

    def _resume(self, path, steps_per_epoch):
        """Read checkpoint `path`, check everything against this trainer, then apply it.

        Nothing is applied before every part has been checked (weights, optimizer state,
        schedule, epoch and batch, the shuffling and the augmenter's generator states,
        history): a refused checkpoint leaves the model, optimizer and augmenter as they
        were. Returns (schedule, state).
        """
        stored, optim_state, schedule_cfg, state = checkpoint.read_training(path)
        variant, c3 = stored.config["variant"], stored.config["c3"]
        if variant != self.model.variant or c3 != self.model.c3:
            raise ValueError(f"{path} holds a {variant}/{c3} model; "
                             f"this trainer's model is {self.model.variant}/{self.model.c3}")
        saved = state["settings"]
        smoothing = float(saved.get("label_smoothing", 0.0))
        if (saved["batch_size"] != self.batch_size or saved["seed"] != self.seed
                or smoothing != self.label_smoothing):
            raise ValueError(f"{path} was written with batch_size={saved['batch_size']}, "
                             f"seed={saved['seed']}, label_smoothing={smoothing}; resume with "
                             "the same settings")
        saved_aug = state.get("augment")
        mine = None if self.augment is None else self.augment.config()
        if (saved_aug and saved_aug["config"]) != mine:
            raise ValueError(f"{path} was written with augment="
                             f"{saved_aug['config'] if saved_aug else None}; this trainer has "
                             f"augment={mine}; resume with the same augmenter")
        epoch, batch = state["epoch"], state["batch"]
        if not (0 <= epoch <= self.epochs and 0 <= batch < steps_per_epoch
                and (epoch < self.epochs or batch == 0)):
            raise checkpoint.CheckpointError(
                f"{path}: epoch {epoch}, batch {batch} is outside this run ({self.epochs} "
                f"epoch(s) of {steps_per_epoch} batches)")
        # Check on copies: every part must load before anything of the caller's changes.
        try:
            np.random.default_rng().bit_generator.state = state["rng_state"]
            if self.augment is not None:
                copy.deepcopy(self.augment).set_state(saved_aug["state"])
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise checkpoint.CheckpointError(f"{path}: unusable generator state ({e})") from None
        try:
            schedule = schedule_from_config(schedule_cfg)
        except (TypeError, ValueError) as e:
            raise checkpoint.CheckpointError(f"{path}: unusable schedule ({e})") from None
        # apply: the optimizer first (its load_state_dict changes nothing unless all of the
        # state loads), then the parts checked above
        try:
            self.optimizer.load_state_dict(optim_state)
        except (TypeError, ValueError, KeyError) as e:
            raise checkpoint.CheckpointError(f"{path}: unusable optimizer state ({e})") from None
        if self.augment is not None:
            self.augment.set_state(saved_aug["state"])
        self.model.params.update(stored.params)
        self.history = list(state["history"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.train_images = int(state.get("train_images", 0))
        return schedule, state

    def fit(self, train, validation=None, *, resume=None, evaluate_train=False):
        """Train on `train` = (uint8 images (N, 28, 28), labels (N,)).

        Parameters
        ----------
        train : (images, labels)
        validation : (images, labels) or None
            Evaluated after each epoch (accuracy and loss in the history).
        resume : path or None
            A checkpoint written by this trainer (per-epoch or on Ctrl-C).
        evaluate_train : bool
            Also evaluate on `train`'s images (undistorted) after each epoch: the
            training-set error of the weights at the pass's end, where
            ``train_accuracy`` is the running figure during the pass.

        Returns
        -------
        list of dict
            Per epoch: epoch, lr, train_loss, train_accuracy, images_per_second,
            seconds, val_loss and val_accuracy when `validation` is given, and
            train_set_loss, train_set_accuracy with `evaluate_train`. A copy becomes
            ``model.history`` (saved with the model).

        Raises
        ------
        TrainingDiverged
            On a NaN or infinite loss (weights stay at the last good step).
        TrainingInterrupted
            On Ctrl-C, after saving a checkpoint to `interrupt_path` (if set).
        """
        images, labels = _check_data("train", train)
        if validation is not None:
            validation = _check_data("validation", validation)
        n = images.shape[0]
        steps_per_epoch = math.ceil(n / self.batch_size)
        total_steps = steps_per_epoch * self.epochs
        rng = np.random.default_rng(self.seed)
        start_epoch, start_batch = 0, 0
        if self.augment is not None and resume is None:
            self.augment.reseed([self.seed, _AUGMENT_STREAM])
        if resume is not None:
            schedule, state = self._resume(resume, steps_per_epoch)
            start_epoch, start_batch = state["epoch"], state["batch"]
            rng.bit_generator.state = state["rng_state"]
        elif isinstance(self.schedule, str):
            schedule = make_schedule(self.schedule, self.optimizer.base_lr, total_steps,
                                     steps_per_epoch, **self.schedule_options)
            self.history = []
        else:
            schedule = self.schedule
            self.history = []

        stop = _StopFlag()
        with stop:
            for epoch in range(start_epoch, self.epochs):
                first = start_batch if epoch == start_epoch else 0
                pass_images = self._pass_images(epoch, images)
                if first == 0:  # a resumed mid-epoch run has the hook's result in the checkpoint
                    self._before_epoch(epoch, pass_images, labels)
                epoch_rng_state = rng.bit_generator.state
                order = rng.permutation(n)
                result = self._epoch(epoch, first, order, pass_images, labels, schedule,
                                     steps_per_epoch, stop)
                if result is not None:  # Ctrl-C: batch index to resume from
                    path = self.interrupt_path
                    if path is not None:
                        rng.bit_generator.state = epoch_rng_state
                        self._save(path, schedule, epoch, result, epoch_rng_state)
                    raise TrainingInterrupted(
                        f"interrupted at epoch {epoch + 1}, batch {result}"
                        + (f"; checkpoint saved to {path}" if path else ""), path)
                record = self.history[-1]
                if validation is not None:
                    metrics = evaluate(self.model, *validation, batch_size=self.eval_batch_size)
                    record["val_accuracy"] = metrics["accuracy"]
                    record["val_loss"] = metrics["loss"]
                    if self.progress:
                        _write(f"epoch {epoch + 1}: validation accuracy {metrics['accuracy']:.4f}")
                if evaluate_train:
                    metrics = evaluate(self.model, images, labels, batch_size=self.eval_batch_size)
                    record["train_set_accuracy"] = metrics["accuracy"]
                    record["train_set_loss"] = metrics["loss"]
                if self.checkpoint_dir is not None:
                    path = os.path.join(self.checkpoint_dir, f"epoch-{epoch + 1:03d}.npz")
                    self._save(path, schedule, epoch + 1, 0, rng.bit_generator.state)
        self.model.history = [dict(record) for record in self.history]
        return self.history

    def _pass_images(self, epoch, images):
        """The images of pass `epoch`: `pass_images`'s, checked, else `images`."""
        if self.pass_images is None:
            return images
        chosen = check_digits(self.pass_images(epoch), f"pass_images({epoch})")
        if chosen.shape != images.shape:
            raise ValueError(f"pass_images({epoch}) gave {chosen.shape[0]} images for the "
                             f"{images.shape[0]} training digits")
        return chosen

    def _before_epoch(self, epoch, images, labels):
        """Call ``optimizer.before_epoch(model, images, labels, epoch, rng)`` if it has one.

        (SDLM re-estimates its curvature there.) `rng` is a generator of its own,
        seeded from (seed, epoch), so the hook leaves the shuffling untouched and a
        resumed run gets the same draws.
        """
        hook = getattr(self.optimizer, "before_epoch", None)
        if hook is None:
            return
        rng = np.random.default_rng([self.seed, epoch, _EPOCH_HOOK_STREAM])
        hook(self.model, images, labels, epoch, rng)

    def _epoch(self, epoch, first, order, images, labels, schedule, steps_per_epoch, stop):
        """One pass; appends to history. Returns None, or the next batch index on Ctrl-C."""
        from tqdm.auto import tqdm

        model, opt, bs = self.model, self.optimizer, self.batch_size
        abuf = {}
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(total=steps_per_epoch, initial=first, disable=not self.progress,
                   desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch", leave=True,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        fused = getattr(opt, "fused_update", None)
        try:
            if fused is not None:
                return self._fused_steps(epoch, first, order, images, labels, schedule,
                                         steps_per_epoch, stop, bar, t0)
            for b in range(first, steps_per_epoch):
                if stop.requested:
                    return b
                idx = order[b * bs:(b + 1) * bs]
                m = idx.shape[0]
                batch = images[idx]
                if self.augment is not None:
                    a = abuf.get(m)
                    if a is None:
                        a = abuf[m] = np.empty((m, 28, 28), np.uint8)
                    batch = self.augment(batch, out=a)
                y = labels[idx]
                opt.lr = schedule.lr_at(epoch * steps_per_epoch + b)
                loss = model.train_step(batch, y, opt,      # uint8: preprocessed in the pass
                                        label_smoothing=self.label_smoothing)
                if not math.isfinite(loss):
                    raise self._diverged(f"loss became {loss} at epoch {epoch + 1}, batch {b + 1}")
                loss_sum += loss * m
                correct += model.last_correct
                seen += m
                if self.progress and (b % 25 == 0 or b == steps_per_epoch - 1):
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                    img_s=f"{rate:,.0f}", refresh=False)
                bar.update(1)
        finally:
            elapsed = time.perf_counter() - t0
            if fused is None:
                self.train_seconds += elapsed
                self.train_images += seen
            bar.close()
        self._record_epoch(epoch, elapsed, loss_sum, correct, seen)
        return None

    def _diverged(self, what):
        """The TrainingDiverged for `what` (the model has kept its last good weights)."""
        saved = (f"; the last good checkpoint is {self.last_checkpoint}"
                 if self.last_checkpoint else "")
        return TrainingDiverged(f"{what} (lr {self.optimizer.lr:.3g}); the model keeps its last "
                                f"good weights{saved}. Try a lower learning rate.")

    def _record_epoch(self, epoch, elapsed, loss_sum, correct, seen):
        self.history.append({
            "epoch": epoch + 1,
            "lr": float(self.optimizer.lr),
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "seconds": elapsed,
            "images_per_second": seen / max(elapsed, 1e-9),
        })

    #: Images per call of the compiled loop: short enough for a responsive progress bar
    #: and Ctrl-C, long enough that the Python around it costs nothing.
    FUSED_CHUNK_IMAGES = 1024

    def _fused_steps(self, epoch, first, order, images, labels, schedule, steps_per_epoch,
                     stop, bar, t0):
        """`_epoch` for optimizers with a compiled update (``fused_update``: SDLM): chunks of
        steps run without returning to Python (`LeNet5.train_steps`: preprocessing,
        forward, backward and update of every step).

        Chunks end at fixed step indices (multiples of the chunk length), so Ctrl-C,
        which takes effect between chunks, and a resumed run see the same chunks, and
        the augmenter the same calls, as an uninterrupted run. A divergence (a non-finite
        loss, or non-finite weights after a chunk) restores the weights from before the
        offending step or chunk and raises `TrainingDiverged`.
        """
        model, opt, bs = self.model, self.optimizer, self.batch_size
        n = images.shape[0]
        per_chunk = max(1, self.FUSED_CHUNK_IMAGES // bs)
        backup = np.empty_like(model.flat_params)
        loss_sum, correct, seen = 0.0, 0, 0
        b = first
        try:
            while b < steps_per_epoch:
                if stop.requested:
                    return b
                end = min(steps_per_epoch, (b // per_chunk + 1) * per_chunk)
                idx = order[b * bs:end * bs]
                batch = images[idx]
                if self.augment is not None:
                    batch = self.augment(batch, out=np.empty_like(batch))
                y = np.ascontiguousarray(labels[idx], dtype=np.int64)
                lrs = np.array([schedule.lr_at(epoch * steps_per_epoch + k) for k in range(b, end)],
                               np.float64)
                lrs32 = lrs.astype(np.float32)
                np.copyto(backup, model.flat_params)
                scale, residual = opt.fused_update(model.flat_params, model.flat_grads)
                backup_residual = residual.copy()
                # whole batches in one call; a last, smaller batch in a call of its own
                full = min(end, n // bs)
                done, lsum, ok = 0, 0.0, 0
                if full > b:
                    done, lsum, ok = model.train_steps(batch[:(full - b) * bs], y[:(full - b) * bs],
                                                       lrs32[:full - b], scale, residual)
                if done == full - b and end > full:
                    d2, l2, ok2 = model.train_steps(batch[(full - b) * bs:], y[(full - b) * bs:],
                                                    lrs32[full - b:], scale, residual)
                    done, lsum, ok = done + d2, lsum + l2, ok + ok2
                opt.advance(done)
                opt.lr = float(lrs[max(done - 1, 0)])
                m = min(n, (b + done) * bs) - b * bs
                loss_sum, correct, seen = loss_sum + lsum, correct + ok, seen + m
                finite = bool(np.isfinite(model.flat_params).all())
                if done < end - b or not finite:
                    if finite:        # a non-finite loss; that step made no update
                        where = f"at batch {b + done + 1}"
                    else:             # an update overflowed
                        np.copyto(model.flat_params, backup)
                        np.copyto(residual, backup_residual)
                        where = f"in batches {b + 1}-{b + done + 1}"
                    raise self._diverged(f"training diverged {where} of epoch {epoch + 1}: the "
                                         "loss or the weights became non-finite")
                b = end
                if self.progress:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / max(seen, 1):.4f}",
                                    acc=f"{correct / max(seen, 1):.4f}", img_s=f"{rate:,.0f}",
                                    refresh=False)
                    bar.update(done)
        finally:
            elapsed = time.perf_counter() - t0
            self.train_seconds += elapsed
            self.train_images += seen
        self._record_epoch(epoch, elapsed, loss_sum, correct, seen)
        return None


def _write(message):
    from tqdm.auto import tqdm
    tqdm.write(message)


class _StopFlag:
    """Turns the first Ctrl-C during training into a request to stop after the
    current step (so no update is half-applied); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False
