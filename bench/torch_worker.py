"""One PyTorch measurement, in its own process (bench.py starts it).

  torch_worker.py measure MODEL BATCH THREADS [--seconds S] [--warmup N]
      loads the fixture weights into the reference model, times eager and
      TorchScript-frozen inference on a random input and prints one JSON line
  torch_worker.py train MODEL BATCH THREADS [--seconds S] [--warmup N]
      times eager training steps from the training fixtures' initial state
      with the model's train-section optimizer; prints one JSON line
  torch_worker.py epoch MODEL THREADS --spec JSON [--epochs E] [--seed S]
      trains whole epochs on Fashion-MNIST held in memory, as bench/epoch.py
      describes (the spec: the model's train section); prints one JSON line
  torch_worker.py info
      prints one JSON line about torch, its BLAS and its threads

A fresh process per measurement, so that torch.set_num_threads and the
OpenBLAS environment (read once, when libopenblas loads) really apply.
Runs under /usr/bin/python3 (Debian torch); see bench/README.md.
"""

import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "test", "fixtures")
sys.path.insert(0, FIXTURES)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))  # safetensors_io

import torch  # noqa: E402


def blas_libraries():
    """Paths of the BLAS libraries mapped into this process (after a matmul)."""
    torch.nn.functional.linear(torch.ones(4, 4), torch.ones(4, 4))
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and "blas" in os.path.basename(parts[5]).lower():
                path = parts[5]
                if path not in found:
                    found.append(path)
    return found


def openblas_info(paths):
    """OpenBLAS's own config string and the kernel core it picked, if loaded."""
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        info = {"library": path, "realpath": os.path.realpath(path)}
        for fn in ("openblas_get_config", "openblas_get_corename"):
            if hasattr(lib, fn):
                f = getattr(lib, fn)
                f.restype = ctypes.c_char_p
                info[fn.replace("openblas_get_", "")] = f().decode()
        if hasattr(lib, "openblas_get_num_threads"):
            info["num_threads"] = lib.openblas_get_num_threads()
        if "config" in info:
            return info
    return None


def info():
    libs = blas_libraries()
    return {
        "torch_version": torch.__version__,
        "torch_config": torch.__config__.show(),
        "parallel_info": torch.__config__.parallel_info(),
        "blas_libraries": libs,
        "blas_realpaths": [os.path.realpath(p) for p in libs],
        "openblas": openblas_info(libs),
        "env": {k: os.environ.get(k) for k in
                ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }


def time_calls(fn, x, seconds, warmup):
    """Median (and min) µs per call of fn(x), after warm-up; >= 20 timed calls."""
    start = time.perf_counter()
    warm = []
    for i in range(warmup):
        t0 = time.perf_counter()
        fn(x)
        warm.append(time.perf_counter() - t0)
        if i >= 9 and time.perf_counter() - start > max(1.0, seconds):
            break  # slow configurations: 10 calls are warm enough
    estimate = statistics.median(warm[len(warm) // 2:])
    iterations = int(min(100000, max(20, seconds / max(estimate, 1e-7))))
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return {"median_us": statistics.median(times) * 1e6, "min_us": min(times) * 1e6,
            "iterations": iterations, "warmup_calls": len(warm)}


def measure(name, batch, threads, seconds, warmup):
    import kiln_models
    import safetensors_io

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = kiln_models.build(name)
    tensors, _ = safetensors_io.load_file(os.path.join(FIXTURES, name, "weights.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    model.eval()
    x = torch.randn(batch, *kiln_models.input_shape(name))
    out = {"model": name, "batch": batch, "threads": threads,
           "torch_threads": torch.get_num_threads()}
    with torch.no_grad():
        out["eager"] = time_calls(model, x, seconds, warmup)
        try:
            scripted = torch.jit.script(model)
            out["jit_how"] = "script"
        except Exception as e:  # noqa: BLE001 - fall back to tracing
            out["jit_script_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
            scripted = torch.jit.trace(model, x)
            out["jit_how"] = "trace"
        frozen = torch.jit.freeze(scripted.eval())
        ref = model(x)
        out["frozen_max_abs_diff"] = float((frozen(x) - ref).abs().max())
        out["frozen"] = time_calls(frozen, x, seconds, warmup)
    out["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    libs = blas_libraries()
    ob = openblas_info(libs)
    out["blas"] = [os.path.realpath(p) for p in libs]
    out["openblas_core"] = ob.get("corename") if ob else None
    return out


# The optimizer of each model's train section (models/*.kiln), as torch.optim
# builds it; bench/train.py checks the .kiln files still say so.
TRAIN_OPTIMIZERS = {
    "mlp_bn": ("adam(lr=1e-3)", lambda p: torch.optim.Adam(p, lr=1e-3)),
    "batchnorm_net": ("adam(lr=1e-3)", lambda p: torch.optim.Adam(p, lr=1e-3)),
    "lenet_bn": ("sgd(lr=0.03, momentum=0.9)",
                 lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9)),
}


def train(name, batch, threads, seconds, warmup):
    """Eager training steps (train mode, zero_grad, cross-entropy, backward,
    step) from the training fixtures' initial state, on one random batch."""
    import kiln_models
    import safetensors_io

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = kiln_models.build(name)
    tensors, _ = safetensors_io.load_file(
        os.path.join(FIXTURES, "train", name, "initial.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    model.train()
    optimizer = TRAIN_OPTIMIZERS[name][1](model.parameters())
    x = torch.rand(batch, *kiln_models.input_shape(name)) * 2 - 1
    y = torch.randint(0, 10, (batch,))

    def step(inputs):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), y).backward()
        optimizer.step()

    out = {"model": name, "batch": batch, "threads": threads,
           "torch_threads": torch.get_num_threads(), "eager": time_calls(step, x, seconds, warmup)}
    ob = openblas_info(blas_libraries())
    out["openblas_core"] = ob.get("corename") if ob else None
    return out


def read_idx(path):
    """An IDX file (gzip-compressed or not) as a numpy uint8 array."""
    import gzip
    import struct

    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an IDX file of unsigned bytes" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(data_dir, split, transform):
    """(images as float32 [N,1,28,28] after the transform, labels as int64)."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.copy()).to(torch.float32).unsqueeze(1)
    for op in transform:
        if op["op"] == "scale":
            x.mul_(op["factor"])
        elif op["op"] == "normalize":
            x.sub_(op["mean"]).div_(op["std"])
        else:
            raise ValueError("unknown transform %r" % op)
    return x.contiguous(), torch.from_numpy(labels.astype("int64"))


def make_optimizer(spec, params):
    """torch.optim's optimizer for the train section's `optimizer = NAME(k=v, ...)`."""
    name, kw = spec["name"], dict(spec["args"])
    if name == "sgd":
        allowed = {"lr", "momentum", "weight_decay", "dampening", "nesterov"}
        cls = torch.optim.SGD
    elif name in ("adam", "adamw"):
        allowed = {"lr", "weight_decay", "eps", "beta1", "beta2"}
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        if "beta1" in kw or "beta2" in kw:
            kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
            allowed.add("betas")
    else:
        raise ValueError("optimizer %s: not known to the epoch worker" % name)
    unknown = set(kw) - allowed
    if unknown:
        raise ValueError("optimizer %s: arguments %s not known to the epoch worker"
                         % (name, ", ".join(sorted(unknown))))
    if "nesterov" in kw:
        kw["nesterov"] = bool(kw["nesterov"])
    return cls(params, **kw)


def evaluate(model, x, y, batch=1000):
    """(mean cross-entropy, accuracy in [0,1], seconds) in eval mode."""
    t0 = time.perf_counter()
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i:i + batch])
            loss += float(torch.nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum"))
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return loss / len(x), correct / len(x), time.perf_counter() - t0


def epochs(name, threads, spec, n_epochs, seed, data_dir, max_batches):
    """Whole training epochs, timed (bench/epoch.py, bench/README.md)."""
    import kiln_models

    torch.set_num_threads(threads)  # before any work
    t_load = time.perf_counter()
    x_all, y_all = load_fashion_mnist(data_dir, "train", spec["transform"])
    x_test, y_test = load_fashion_mnist(data_dir, "test", spec["transform"])
    load_seconds = time.perf_counter() - t_load

    torch.manual_seed(seed)
    model = kiln_models.build(name)
    optimizer = make_optimizer(spec["optimizer"], model.parameters())
    generator = torch.Generator().manual_seed(seed)
    n_val = int(round(spec["validation"] * len(x_all)))
    perm = torch.randperm(len(x_all), generator=generator)
    x_val, y_val = x_all[perm[:n_val]], y_all[perm[:n_val]]
    x_train, y_train = x_all[perm[n_val:]].contiguous(), y_all[perm[n_val:]].contiguous()
    del x_all, y_all
    if max_batches:  # smoke tests: a fraction of an epoch, and of the test set
        x_train, y_train = x_train[:max_batches * spec["batch"]], y_train[:max_batches * spec["batch"]]
        x_val, y_val = x_val[:max_batches * spec["batch"]], y_val[:max_batches * spec["batch"]]
        x_test, y_test = x_test[:max_batches * spec["batch"]], y_test[:max_batches * spec["batch"]]
    batch, n = spec["batch"], len(x_train)
    cross_entropy = torch.nn.functional.cross_entropy

    records = []
    for epoch in range(1, n_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        loss_sum, correct, batches = 0.0, 0, 0
        for i in range(0, n, batch):  # the last partial batch is kept
            idx = order[i:i + batch]
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            batches += 1
        seconds = time.perf_counter() - t0
        rec = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
               "seconds": seconds, "batches": batches, "samples": n}
        if n_val:
            rec["val_loss"], rec["val_accuracy"], rec["eval_seconds"] = evaluate(model, x_val, y_val)
        records.append(rec)
        print("torch %s %dT epoch %d: %.2f s, train loss %.4f%s" % (
            name, threads, epoch, seconds, rec["train_loss"],
            ", val accuracy %.2f%%" % (100 * rec["val_accuracy"]) if n_val else ""),
            file=sys.stderr, flush=True)
    test_loss, test_accuracy, test_seconds = evaluate(model, x_test, y_test)
    ob = openblas_info(blas_libraries())
    return {"model": name, "threads": threads, "torch_threads": torch.get_num_threads(),
            "seed": seed, "spec": spec, "epochs": records, "test_loss": test_loss,
            "test_accuracy": test_accuracy, "test_images": len(x_test), "test_seconds": test_seconds,
            "train_samples": n, "val_samples": len(x_val), "load_seconds": load_seconds,
            "max_batches": max_batches, "openblas_core": ob.get("corename") if ob else None,
            "blas": [os.path.realpath(p) for p in blas_libraries()],
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("batch", type=int)
    t.add_argument("threads", type=int)
    t.add_argument("--seconds", type=float, default=1.0)
    t.add_argument("--warmup", type=int, default=10)
    m = sub.add_parser("measure")
    m.add_argument("model")
    m.add_argument("batch", type=int)
    m.add_argument("threads", type=int)
    m.add_argument("--seconds", type=float, default=1.0)
    m.add_argument("--warmup", type=int, default=50)
    e = sub.add_parser("epoch")
    e.add_argument("model")
    e.add_argument("threads", type=int)
    e.add_argument("--spec", required=True, help="the train section as JSON (bench/epoch.py)")
    e.add_argument("--epochs", type=int, default=1)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    e.add_argument("--max-batches", type=int, default=0)
    sub.add_parser("info")
    args = parser.parse_args()
    if args.cmd == "info":
        print(json.dumps(info()))
    elif args.cmd == "epoch":
        print(json.dumps(epochs(args.model, args.threads, json.loads(args.spec), args.epochs,
                                args.seed, args.data_dir, args.max_batches)))
    elif args.cmd == "train":
        print(json.dumps(train(args.model, args.batch, args.threads, args.seconds, args.warmup)))
    else:
        print(json.dumps(measure(args.model, args.batch, args.threads, args.seconds, args.warmup)))


if __name__ == "__main__":
    main()
