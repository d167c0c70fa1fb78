#!/usr/bin/env python3
"""Kiln's GPU programs against PyTorch on a GPU machine (bench/gpu/README.md).

Runs inside a bundle that bench/gpu/prepare.sh made (kiln/ programs built
ahead of time, fixtures/, data/, and these scripts), where PyTorch and numpy
are installed (no Kiln, no Debian packages needed):

  gpu_bench.py parity BUNDLE            Kiln's inference outputs against the
                                        PyTorch fixtures (1e-4), and training
                                        parity cases (10 steps: losses, hits,
                                        final state; the manifest's tolerances)
  gpu_bench.py infer BUNDLE             latency per call at batch 1, 64, 1024:
                                        Kiln against PyTorch eager (and
                                        torch.compile where it works)
  gpu_bench.py epoch BUNDLE             one Fashion-MNIST epoch of each
                                        model: Kiln's training program against
                                        PyTorch eager, same data, batch 64

--torch-device (default cuda) is where PyTorch runs; cpu makes a dry run of
the script on a machine without a GPU (with an OpenCL bundle). Results go to
stdout as a Markdown table and, with --json FILE, as JSON.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def setup_paths(bundle):
    # The bundle keeps the repository's layout for the modules it carries.
    for sub in ("test/fixtures", "tools", "bench"):
        sys.path.insert(0, os.path.join(bundle, sub))


def run(command, timeout=1800):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(command), result.returncode,
                                                      result.stdout, result.stderr))
    return result.stdout


def read_npy(path):
    import numpy as np
    return np.load(path)


def close(actual, expected, rtol, atol):
    import numpy as np
    if actual.shape != expected.shape:
        return False, "shape %s, expected %s" % (actual.shape, expected.shape)
    both_nan = np.isnan(actual) & np.isnan(expected)
    bad = ~(np.isclose(actual, expected, rtol=rtol, atol=atol) | both_nan)
    worst = float(np.nanmax(np.abs(actual - expected))) if actual.size else 0.0
    return not bad.any(), "%d of %d outside, max abs error %.3g" % (bad.sum(), bad.size, worst)


def parity(bundle, args):
    import safetensors_io
    fixtures = os.path.join(bundle, "test", "fixtures")
    kiln = os.path.join(bundle, "kiln")
    rows, failures = [], 0
    for model in args.models:
        for batch in (1, 64):
            out = os.path.join(args.work, "%s_b%d.npy" % (model, batch))
            run([os.path.join(kiln, model + "_infer"), "--input",
                 os.path.join(fixtures, model, "input_b%d.npy" % batch), "--output", out])
            ok, text = close(read_npy(out), read_npy(os.path.join(fixtures, model,
                                                                  "output_b%d.npy" % batch)),
                             1e-4, 1e-4)
            failures += not ok
            rows.append(("inference %s batch %d" % (model, batch), ok, text))
    manifest = json.load(open(os.path.join(fixtures, "train", "manifest.json")))
    for name in args.cases:
        case = next(c for c in manifest["cases"] if c["name"] == name)
        files = {k: os.path.join(fixtures, "train", v) for k, v in case["files"].items()}
        program = os.path.join(kiln, "cases", re.sub(r"\W", "_", name))
        state = os.path.join(args.work, re.sub(r"\W", "_", name) + ".safetensors")
        printed = run([program, "--init", files["initial"], "--inputs", files["inputs"],
                       "--labels", files["labels"], "--steps", "10", "--batch",
                       str(case["batch_size"]), "--no-shuffle", "-o", state])
        rtol, atol = case["tolerance"]["rtol"], case["tolerance"]["atol"]
        want = json.load(open(files["losses"]))
        steps = re.findall(r"step (\d+)/10: loss (\S+), correct (\d+)/", printed)
        ok = len(steps) == 10 and all(
            abs(float(loss) - wl) <= atol + rtol * abs(wl) + 5e-7 and int(c) == wc
            for (_, loss, c), wl, wc in zip(steps, want["loss"], want["correct"]))
        got, _ = safetensors_io.load_file(state)
        expected, _ = safetensors_io.load_file(files["after_10"])
        worst = ""
        for key, value in expected.items():
            good, text = close(got[key].astype("float64"), value.astype("float64"), rtol, atol)
            if not good:
                ok, worst = False, "%s: %s" % (key, text)
        failures += not ok
        rows.append(("training %s, 10 steps" % name, ok,
                     worst or "losses, hits and %d tensors match" % len(expected)))
    print("| check | result | detail |\n|---|---|---|")
    for check, ok, text in rows:
        print("| %s | %s | %s |" % (check, "match" if ok else "MISMATCH", text))
    return {"parity": [{"check": c, "ok": o, "detail": t} for c, o, t in rows]}, failures


def kiln_latency(program, batch, iterations):
    text = run([program, "--bench", "--batch", str(batch), "--iterations", str(iterations)])
    match = re.search(r"median_us ([0-9.]+) min_us ([0-9.]+)", text)
    return float(match.group(1)), float(match.group(2))


def torch_latency(fn, x, seconds):
    import torch
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(10):
        fn(x)
    sync()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 20:
        t0 = time.perf_counter()
        fn(x)
        sync()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times), min(times)


def infer(bundle, args):
    import torch
    import kiln_models
    import safetensors_io
    device = torch.device(args.torch_device)
    records = []
    for model_name in args.models:
        model = kiln_models.build(model_name)
        tensors, _ = safetensors_io.load_file(
            os.path.join(bundle, "test", "fixtures", model_name, "weights.safetensors"))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
        model = model.to(device).eval()
        compiled = None
        try:
            compiled = torch.compile(model)
        except Exception as error:  # torch.compile is PyTorch 2's
            print("torch.compile of %s: %s" % (model_name, error), file=sys.stderr)
        for batch in args.batches:
            x = torch.rand(batch, *kiln_models.input_shape(model_name))

            # The same work as Kiln's call: host input in, host output out.
            def eager(inputs, m=model):
                with torch.no_grad():
                    return m(inputs.to(device)).cpu()

            rec = {"model": model_name, "batch": batch}
            rec["kiln_us"], rec["kiln_min_us"] = kiln_latency(
                os.path.join(bundle, "kiln", model_name + "_infer"), batch, args.iterations)
            rec["eager_us"], _ = torch_latency(eager, x, args.seconds)
            xd = x.to(device)
            with torch.no_grad():
                rec["eager_resident_us"], _ = torch_latency(model, xd, args.seconds)
            if compiled is not None:
                try:
                    with torch.no_grad():
                        rec["compile_resident_us"], _ = torch_latency(compiled, xd, args.seconds)
                except Exception as error:
                    print("torch.compile run of %s: %s" % (model_name, error), file=sys.stderr)
            records.append(rec)
            print("infer %s b%d: kiln %.1f us, eager %.1f us" % (
                model_name, batch, rec["kiln_us"], rec["eager_us"]), file=sys.stderr)
    print("| model | batch | Kiln µs | eager µs (host in/out) | eager/Kiln | eager µs (on device) "
          "| torch.compile µs (on device) |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in records:
        print("| %s | %d | %.1f | %.1f | %.2f× | %.1f | %s |" % (
            r["model"], r["batch"], r["kiln_us"], r["eager_us"], r["eager_us"] / r["kiln_us"],
            r["eager_resident_us"],
            "%.1f" % r["compile_resident_us"] if "compile_resident_us" in r else "–"))
    return {"infer": records}, 0


def epoch(bundle, args):
    import torch
    import kiln_models
    import torch_worker
    device = torch.device(args.torch_device)
    data = os.path.join(bundle, "data")
    records = []
    for model_name in args.models:
        spec = json.load(open(os.path.join(bundle, "kiln", model_name + "_train.json")))
        # Kiln: one epoch of its training program, batch 64, no validation.
        text = run([os.path.join(bundle, "kiln", model_name + "_train"), "--data", data,
                    "--epochs", "1", "--batch", "64", "--val-split", "0", "--no-progress",
                    "-o", os.path.join(args.work, model_name + ".safetensors")])
        match = re.search(r"epoch 1/1: train loss ([0-9.]+), accuracy ([0-9.]+)%; ([0-9.]+) s",
                          text)
        test = re.search(r"test: loss [0-9.]+, accuracy ([0-9.]+)%", text)
        kiln_seconds = float(match.group(3))
        # PyTorch eager: the same epoch, data held on the device.
        x, y = torch_worker.load_fashion_mnist(data, "train", spec["transform"])
        x, y = x.to(device), y.to(device)
        torch.manual_seed(0)
        model = kiln_models.build(model_name).to(device)
        optimizer = torch_worker.make_optimizer(spec["optimizer"], model.parameters())
        order = torch.randperm(len(x), device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        model.train()
        sync()
        t0 = time.perf_counter()
        correct = 0
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            optimizer.zero_grad(set_to_none=True)
            logits = model(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == y[idx]).sum()
        sync()
        torch_seconds = time.perf_counter() - t0
        rec = {"model": model_name, "kiln_seconds": kiln_seconds,
               "kiln_train_accuracy": float(match.group(2)),
               "kiln_test_accuracy": float(test.group(1)) if test else None,
               "torch_seconds": torch_seconds,
               "torch_train_accuracy": 100.0 * int(correct) / len(x)}
        records.append(rec)
        print("epoch %s: kiln %.2f s, eager %.2f s" % (model_name, kiln_seconds, torch_seconds),
              file=sys.stderr)
    print("| model | Kiln s/epoch | eager s/epoch | eager/Kiln | Kiln train acc. | eager train acc. "
          "|\n|---|---:|---:|---:|---:|---:|")
    for r in records:
        print("| %s | %.2f | %.2f | %.2f× | %.2f%% | %.2f%% |" % (
            r["model"], r["kiln_seconds"], r["torch_seconds"],
            r["torch_seconds"] / r["kiln_seconds"], r["kiln_train_accuracy"],
            r["torch_train_accuracy"]))
    return {"epoch": records}, 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["parity", "infer", "epoch"])
    parser.add_argument("bundle")
    parser.add_argument("--torch-device", default="cuda")
    parser.add_argument("--models", default="batchnorm_net,mlp_bn,lenet_bn")
    parser.add_argument("--cases", default="mlp_bn/sgd_momentum,lenet_bn/sgd_momentum,"
                                           "conv_pools/adamw,bn_cumulative/adam_wd")
    parser.add_argument("--batches", default="1,64,1024")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=0)
    parser.add_argument("--work", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.cases = [c for c in args.cases.split(",") if c]
    args.batches = [int(b) for b in args.batches.split(",") if b]
    bundle = os.path.abspath(args.bundle)
    args.work = args.work or os.path.join(bundle, "work")
    os.makedirs(args.work, exist_ok=True)
    setup_paths(bundle)
    result, failures = {"parity": parity, "infer": infer, "epoch": epoch}[args.command](bundle,
                                                                                      args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
