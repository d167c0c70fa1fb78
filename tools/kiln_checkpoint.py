#!/usr/bin/python3
"""Kiln training checkpoints <-> a PyTorch model and its torch.optim optimizer.

A Kiln checkpoint (what a Kiln training step saves and loads) is one
safetensors file holding:
  * the model's state_dict under its own keys (parameters, running
    statistics, num_batches_tracked);
  * the optimizer's state under names derived from the parameter's key:
    `<key>.momentum_buffer` (torch.optim.SGD with momentum), `<key>.exp_avg`
    and `<key>.exp_avg_sq` (torch.optim.Adam and AdamW);
  * `step`, an I64 scalar: the optimizer steps taken so far.

So a run can continue on either side:

    import kiln_checkpoint
    kiln_checkpoint.load_into("ckpt.safetensors", model, optimizer)  # Kiln -> PyTorch
    ...train in PyTorch...
    kiln_checkpoint.save_from(model, optimizer, "ckpt.safetensors", step)  # PyTorch -> Kiln

`step` is needed on the way back because torch.optim.SGD does not count
steps (Adam does; its count must agree). Continuing 9 steps in Kiln from
PyTorch's state after its first step gives PyTorch's 10th
(test/unit/codegen/TrainStepTest.cpp, ResumedFixture).

    /usr/bin/python3 tools/kiln_checkpoint.py --self-test

checks that saving and loading round-trips: a run continued from a saved
checkpoint matches the uninterrupted run bit for bit, for SGD (momentum,
dampening, nesterov, weight decay), Adam and AdamW. Needs PyTorch
(Debian's /usr/bin/python3 has it). Files are written atomically.
"""

import argparse
import os
import sys

# The one safetensors writer/reader of the repo's Python (beside this file).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

import numpy as np  # noqa: E402

# The per-parameter state torch.optim keeps that a Kiln checkpoint holds.
OPTIMIZER_STATE = ("momentum_buffer", "exp_avg", "exp_avg_sq")


class CheckpointError(Exception):
    pass


def _numpy(tensor):
    # A copy: numpy() shares the tensor's memory, which the next step changes.
    return tensor.detach().cpu().contiguous().numpy().copy()


def state_tensors(model, optimizer, step):
    """The checkpoint's tensors (name -> ndarray) of `model` and `optimizer`
    after `step` optimizer steps."""
    tensors = {key: _numpy(value) for key, value in model.state_dict().items()}
    for key, param in model.named_parameters():
        state = optimizer.state.get(param, {})
        if "max_exp_avg_sq" in state:
            raise CheckpointError("%s: amsgrad's state has no Kiln name" % key)
        for name in OPTIMIZER_STATE:
            if state.get(name) is not None:
                tensors[key + "." + name] = _numpy(state[name])
        if "step" in state and int(state["step"]) != step:
            raise CheckpointError("%s: the optimizer took %d steps, not %d" %
                                  (key, int(state["step"]), step))
    tensors["step"] = np.array(step, dtype=np.int64)
    return tensors


def save_from(model, optimizer, path, step):
    """Writes the checkpoint of `model` and `optimizer` after `step` steps."""
    safetensors_io.save_file(path, state_tensors(model, optimizer, step))


def load_into(path, model, optimizer):
    """Loads a checkpoint into `model` (its whole state_dict: every key, no
    other) and `optimizer` (the state of each parameter it names); returns
    the step count."""
    import torch

    tensors, _ = safetensors_io.load_file(path)
    if "step" not in tensors:
        raise CheckpointError("%s: no 'step' tensor" % path)
    step = int(tensors.pop("step"))
    keys = set(model.state_dict())
    derived = {k for k in tensors if k not in keys}
    for key in derived:
        base, _, name = key.rpartition(".")
        if name not in OPTIMIZER_STATE or base not in keys:
            raise CheckpointError("%s: tensor '%s' is neither in the model's state_dict nor "
                                  "optimizer state of one of its parameters" % (path, key))
    missing = keys - set(tensors)
    if missing:
        raise CheckpointError("%s: missing %s" % (path, ", ".join(sorted(missing))))
    model.load_state_dict({k: torch.from_numpy(np.array(tensors[k])) for k in keys})
    adam = isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW))
    for key, param in model.named_parameters():
        state = {}
        for name in OPTIMIZER_STATE:
            if key + "." + name in tensors:
                state[name] = torch.from_numpy(np.array(tensors[key + "." + name])).to(param)
        if adam and state:
            state["step"] = torch.tensor(float(step))  # torch 1.13 keeps it as a tensor
        if state:
            optimizer.state[param] = state
        else:
            optimizer.state.pop(param, None)
    return step


def _self_test():
    import copy
    import tempfile

    import torch
    from torch import nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(1)
    xs = torch.randn(5, 8, 6)
    ys = torch.randint(0, 3, (5, 8))
    optimizers = {
        "sgd momentum dampening": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9,
                                                            dampening=0.3),
        "sgd nesterov weight decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9,
                                                               nesterov=True, weight_decay=1e-2),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2),
    }
    failures = 0
    for name, make in optimizers.items():
        model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
        optimizer = make(model.parameters())

        def step(m, opt, i):
            m.train()
            opt.zero_grad()
            F.cross_entropy(m(xs[i]), ys[i]).backward()
            opt.step()

        for i in range(3):
            step(model, optimizer, i)
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "ckpt.safetensors")
            save_from(model, optimizer, path, 3)
            resumed = copy.deepcopy(model)
            with torch.no_grad():
                for p in resumed.parameters():
                    p.add_(1.0)  # the load must overwrite everything
            resumed_opt = make(resumed.parameters())
            if load_into(path, resumed, resumed_opt) != 3:
                failures += 1
                print("%s: the step count did not round-trip" % name)
        for i in (3, 4):
            step(model, optimizer, i)
            step(resumed, resumed_opt, i)
        a, b = state_tensors(model, optimizer, 5), state_tensors(resumed, resumed_opt, 5)
        same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        print("%s: %s" % (name, "same bits" if same else "DIFFERENT"))
        failures += not same
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Kiln training checkpoints <-> PyTorch (see the module docstring).")
    parser.add_argument("--self-test", action="store_true",
                        help="round-trip SGD, Adam and AdamW runs through a checkpoint")
    args = parser.parse_args(argv)
    if not args.self_test:
        parser.print_help()
        return 2
    try:
        return _self_test()
    except CheckpointError as error:
        print("kiln_checkpoint: error: %s" % error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
