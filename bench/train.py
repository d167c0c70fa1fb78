#!/usr/bin/python3
"""Kiln's compiled training step against PyTorch's eager one, side by side.

    /usr/bin/python3 bench/train.py [--build-dir build] [--models mlp_bn,...]
        [--batches 64,256] [--threads 1,2] [--seconds 1]

For every model x batch x thread count, in fresh processes: Kiln's
JIT-compiled step (build/bin/kiln-train-bench; Halide's JIT runtime gets
HL_NUM_THREADS) and PyTorch 1.13's eager step (bench/torch_worker.py train)
in the environment as it is and, where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE
is set, without them. Both start from the training fixtures' initial state
with the model's train-section optimizer, on one random batch. Prints a
Markdown table: µs per step, Kiln's speed-up over PyTorch as the environment
is and over PyTorch's best, and Kiln's GFLOP/s, counting a step as the
forward and both gradient products of every layer (`kilnc check`'s FLOPs
per sample), less the first layer's input gradient, which is not computed
(step_flops_per_sample), and that as a share of the machine's FP32 FMA
peak for the thread count, measured in the same run (bench/peak.c, the
widest ISA the CPU has). Needs torch (Debian's /usr/bin/python3) and
libopenblas0-pthread, as bench/run.sh checks.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
MODELS = ("mlp_bn", "batchnorm_net", "lenet_bn")


def run(cmd, env=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit("train bench: %s failed:\n%s" % (" ".join(cmd), result.stderr))
    return result.stdout


def step_flops_per_sample(kilnc, model):
    """FLOPs of one training step per sample, from `kilnc check`'s table:
    each linear and conv layer's forward product, its dW product and its dX
    product, except the first one's dX (its input is the data, whose
    gradient the step does not compute); the other layers' forward FLOPs
    three times (their forward, their gradient and the update are of the
    same order and small)."""
    text = run([kilnc, "check", os.path.join(ROOT, "models", model + ".kiln")])
    total, first = 0, True
    for op, flops in re.findall(r"^\S+\s+(\w+)\s+\[.*?\]\s+[\d,]+\s+([\d,]+)$", text, re.M):
        flops = int(flops.replace(",", ""))
        if op in ("linear", "conv2d"):
            total += (2 if first else 3) * flops
            first = False
        else:
            total += 3 * flops
    return total


def check_optimizer(model):
    """The worker's optimizer is the one models/<model>.kiln trains with."""
    from torch_worker import TRAIN_OPTIMIZERS

    with open(os.path.join(ROOT, "models", model + ".kiln")) as f:
        text = f.read()
    spelled = TRAIN_OPTIMIZERS[model][0]
    if "optimizer = " + spelled not in text:
        sys.exit("train bench: models/%s.kiln no longer trains with %s (bench/torch_worker.py)"
                 % (model, spelled))


def kiln_step(bench, model, batch, threads, seconds):
    env = dict(os.environ, HL_NUM_THREADS=str(threads))
    out = run([bench, os.path.join(ROOT, "models", model + ".kiln"), "--init",
               os.path.join(ROOT, "test", "fixtures", "train", model, "initial.safetensors"),
               "--batch", str(batch), "--seconds", str(seconds)], env)
    return float(re.search(r"median_us ([\d.e+]+)", out).group(1))


def torch_step(model, batch, threads, seconds, clean):
    env = dict(os.environ)
    if clean:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    out = run(["/usr/bin/python3", os.path.join(HERE, "torch_worker.py"), "train", model,
               str(batch), str(threads), "--seconds", str(seconds)], env)
    return json.loads(out)["eager"]["median_us"]


def measure_peaks(threads):
    """GFLOP/s of bench/peak.c per thread count (the widest ISA)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "peak")
        run(["cc", "-O2", "-pthread", os.path.join(HERE, "peak.c"), "-o", binary])
        out = run([binary] + [str(t) for t in threads])
    peaks = {}
    for isa, count, gflops in re.findall(r"peak: isa (\S+) threads (\d+) gflops ([\d.]+)", out):
        peaks[int(count)] = (isa, float(gflops))
    return peaks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    kilnc = os.path.join(args.build_dir, "bin", "kilnc")
    bench = os.path.join(args.build_dir, "bin", "kiln-train-bench")
    for tool in (kilnc, bench):
        if not os.access(tool, os.X_OK):
            sys.exit("train bench: no %s (build first)" % tool)
    openblas_env = any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    cpu = run(["lscpu"])
    name = re.search(r"Model name:\s*(.*)", cpu)
    print("CPU: %s, %d cores; OPENBLAS_CORETYPE=%s" % (
        name.group(1) if name else "?", os.cpu_count(), os.environ.get("OPENBLAS_CORETYPE")))
    thread_counts = [int(t) for t in args.threads.split(",")]
    peaks = measure_peaks(thread_counts)
    print("FP32 FMA peak (bench/peak.c): " + ", ".join(
        "%d thread%s %.1f GFLOP/s (%s)" % (t, "" if t == 1 else "s", peaks[t][1], peaks[t][0])
        for t in thread_counts))
    print()
    head = "| model | batch | threads | Kiln (µs) | PyTorch (µs) |"
    rule = "|---|---:|---:|---:|---:|"
    if openblas_env:
        head += " PyTorch, no OPENBLAS_* (µs) |"
        rule += "---:|"
    print(head + " × PyTorch as is | × PyTorch's best | Kiln GFLOP/s | % of peak |")
    print(rule + "---:|---:|---:|---:|")
    for model in args.models.split(","):
        check_optimizer(model)
        flops = step_flops_per_sample(kilnc, model)
        for batch in (int(b) for b in args.batches.split(",")):
            for threads in thread_counts:
                kiln = kiln_step(bench, model, batch, threads, args.seconds)
                torch_as_is = torch_step(model, batch, threads, args.seconds, False)
                row = "| %s | %d | %d | %.0f | %.0f |" % (model, batch, threads, kiln, torch_as_is)
                best = torch_as_is
                if openblas_env:
                    clean = torch_step(model, batch, threads, args.seconds, True)
                    row += " %.0f |" % clean
                    best = min(best, clean)
                # PyTorch's best also over thread counts (it was slower on 2
                # threads than on 1 on some machines).
                if threads > 1:
                    best = min(best, torch_step(model, batch, 1, args.seconds, False))
                    if openblas_env:
                        best = min(best, torch_step(model, batch, 1, args.seconds, True))
                gflops = flops * batch / kiln / 1e3
                print(row + " %.2f | %.2f | %.1f | %.0f%% |" % (
                    torch_as_is / kiln, best / kiln, gflops, 100 * gflops / peaks[threads][1]))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
