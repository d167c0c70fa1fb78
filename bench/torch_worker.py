"""One PyTorch measurement, in its own process (bench.py starts it).

  torch_worker.py measure MODEL BATCH THREADS [--seconds S] [--warmup N]
      loads the fixture weights into the reference model, times eager and
      TorchScript-frozen inference on a random input and prints one JSON line
  torch_worker.py train MODEL BATCH THREADS [--seconds S] [--warmup N]
      times eager training steps from the training fixtures' initial state
      with the model's train-section optimizer; prints one JSON line
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
    sub.add_parser("info")
    args = parser.parse_args()
    if args.cmd == "info":
        print(json.dumps(info()))
    elif args.cmd == "train":
        print(json.dumps(train(args.model, args.batch, args.threads, args.seconds, args.warmup)))
    else:
        print(json.dumps(measure(args.model, args.batch, args.threads, args.seconds, args.warmup)))


if __name__ == "__main__":
    main()
