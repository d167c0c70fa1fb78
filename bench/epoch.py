#!/usr/bin/python3
"""Whole training epochs of Kiln and of PyTorch, side by side, in one run.

    /usr/bin/python3 bench/epoch.py [--build-dir build] [--models batchnorm_net,mlp_bn,lenet_bn]
        [--threads 1,2] [--epochs 1] [--seed 0] [--out FILE | --save]

For every model x thread count, each in a fresh process, interleaved:

  - Kiln: `kilnc train models/MODEL.kiln -o TMP/ckpt.safetensors --epochs E
    --threads T --seed S --no-progress --metrics TMP/m.csv`; the metrics CSV
    gives each epoch's training seconds and the time inside the compiled step,
    the last line of its output the test accuracy.
  - PyTorch 1.13 eager (bench/torch_worker.py epoch, Debian torch under
    /usr/bin/python3, torch.set_num_threads(T) and OPENBLAS_NUM_THREADS=T):
    Fashion-MNIST parsed from the IDX files, transformed once and held in
    memory, the validation share split off with a seeded permutation, a seeded
    shuffle per epoch, batches of the train section's size (last partial
    batch kept), model.train(), an optimizer step per batch; the training
    part of each epoch timed by wall clock, validation and test evaluated
    (eval mode) apart. In the environment as it is and, where
    OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set, without them.

Model, optimizer, learning rate, momentum, batch, validation share and
transform come from models/MODEL.kiln's train section and the PyTorch
definition from test/fixtures/kiln_models.py. Prints a Markdown report
(machine, BLAS, date, one row per model x threads); --out FILE also writes
it to FILE (and the raw numbers to FILE's .json), --save to
bench/results/DATE-TIME-epoch-HOST.md. Exit status 1 when some run failed.
See bench/README.md, "Training epochs".
"""

import argparse
import csv
import datetime
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
MODELS = ("batchnorm_net", "mlp_bn", "lenet_bn")
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
DATA_DIR = "/usr/share/datasets/fashion-mnist"
METRICS_HEADER = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                  "step_seconds", "eval_seconds", "samples_per_second"]
TEST_RE = re.compile(r"test: loss ([-+\w.]+), accuracy ([\d.]+)% \((\d+) images\)")
# The targets: per epoch against PyTorch as the environment is (at its
# faster thread count) and against its best configuration; test accuracy.
TARGET_AS_IS, TARGET_BEST, TARGET_POINTS = 3.0, 1.5, 0.5


class RunError(Exception):
    pass


class KilnUnusable(RunError):
    """kilnc cannot run the epoch trainer at all: no more Kiln runs."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def tail(text, lines=8):
    return "\n".join(text.strip().splitlines()[-lines:])


# ------------------------------------------------------------ the train section

def _number(text):
    text = text.strip()
    if "/" in text:
        a, b = text.split("/", 1)
        return float(a) / float(b)
    if text in ("true", "false"):
        return text == "true"
    return float(text)


def _call_args(text):
    """'lr=0.03, momentum=0.9' -> {'lr': 0.03, 'momentum': 0.9}; '1/255' -> {'': 1/255}."""
    args = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.rpartition("=")
        args[key.strip()] = _number(value)
    return args


def train_spec(model):
    """What PyTorch needs of models/MODEL.kiln's train section: optimizer with
    its arguments, batch, validation share and transform."""
    path = os.path.join(ROOT, "models", model + ".kiln")
    with open(path) as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    section = re.search(r"\btrain\s*\{(.*?)\}", text, re.S)
    if not section:
        raise RunError("%s: no train section" % path)
    body = section.group(1)

    def field(name, pattern, default=None):
        m = re.search(r"\b%s\s*=\s*%s" % (name, pattern), body, re.S)
        if not m and default is None:
            raise RunError("%s: the train section has no %s" % (path, name))
        return m.group(1) if m else default

    loss = field("loss", r"(\w+)")
    if loss != "cross_entropy":
        raise RunError("%s: loss %s (the epoch bench knows cross_entropy)" % (path, loss))
    data = field("data", r"(\w+)")
    if data != "fashion_mnist":
        raise RunError("%s: data %s (the epoch bench knows fashion_mnist)" % (path, data))
    m = re.search(r"\boptimizer\s*=\s*(\w+)\s*\(([^)]*)\)", body)
    if not m:
        raise RunError("%s: the train section has no optimizer" % path)
    transform = []
    for op, args in re.findall(r"(\w+)\s*\(([^)]*)\)", field("transform", r"\[(.*?)\]", "")):
        a = _call_args(args)
        if op == "scale":
            transform.append({"op": "scale", "factor": a.get("", a.get("factor"))})
        elif op == "normalize":
            transform.append({"op": "normalize", "mean": a.get("mean"), "std": a.get("std")})
        else:
            raise RunError("%s: transform %s (the epoch bench knows scale and normalize)" % (path, op))
    return {"optimizer": {"name": m.group(1), "args": _call_args(m.group(2))},
            "optimizer_text": "%s(%s)" % (m.group(1), re.sub(r"\s+", " ", m.group(2).strip())),
            "batch": int(field("batch", r"(\d+)")),
            "validation": float(field("validation", r"([\d.]+)", "0")),
            "transform": transform,
            "transform_text": field("transform", r"(\[.*?\])", "[]"),
            "early_stopping": bool(re.search(r"\bearly_stopping\b", body))}


# ------------------------------------------------------------------ machine facts

def lscpu_model():
    out = run(["lscpu"]).stdout
    m = re.search(r"^Model name:\s*(.*)$", out, re.M)
    return m.group(1).strip() if m else "unknown"


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def torch_env(threads, clean):
    """A PyTorch process's environment: as it is, or without OPENBLAS_VARS;
    OPENBLAS_NUM_THREADS=T in both (torch.set_num_threads does not reach
    OpenBLAS's own pthread pool)."""
    env = dict(os.environ)
    if clean:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def torch_info(clean):
    proc = run([PYTHON, os.path.join(HERE, "torch_worker.py"), "info"], env=torch_env(1, clean))
    if proc.returncode != 0:
        sys.exit("epoch bench: %s cannot run bench/torch_worker.py info (torch missing?):\n%s"
                 % (PYTHON, tail(proc.stderr)))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def is_reference_blas(path):
    real = os.path.realpath(path)
    return "openblas" not in real.lower() and ("/blas/" in real or os.path.basename(real).startswith("libblas"))


def kiln_version(kilnc):
    info = {"kilnc": kilnc}
    try:
        info["kilnc_mtime"] = datetime.datetime.fromtimestamp(os.path.getmtime(kilnc)).strftime("%Y-%m-%d %H:%M")
    except OSError:
        pass
    proc = run(["git", "-C", ROOT, "log", "-1", "--format=%h %ad", "--date=short"])
    info["commit"] = proc.stdout.strip() if proc.returncode == 0 else "?"
    return info


# ------------------------------------------------------------------------- runs

EPOCH_FLAGS = ("--epochs", "--metrics", "--no-progress")


def kiln_probe(kilnc):
    """None if `kilnc train` looks like the epoch trainer, else why not."""
    if not os.access(kilnc, os.X_OK):
        return "no %s (build Kiln first, or pass --build-dir)" % kilnc
    proc = run([kilnc, "train", "--help"])
    text = proc.stdout + proc.stderr
    missing = [f for f in EPOCH_FLAGS if f not in text]
    if proc.returncode == 0 and missing:
        return ("%s's train command has no %s (its --help): it is not the epoch trainer yet; "
                "rebuild from a main that has it, or pass --build-dir" % (kilnc, ", ".join(missing)))
    return None


def kiln_epochs(kilnc, model, threads, n_epochs, seed, timeout, data_dir):
    """One `kilnc train` process -> {"epochs": [...metrics rows...], "test_accuracy", ...}."""
    if not os.access(kilnc, os.X_OK):
        raise RunError("no %s (build Kiln first, or pass --build-dir)" % kilnc)
    with tempfile.TemporaryDirectory(prefix="kiln-epoch-") as tmp:
        metrics = os.path.join(tmp, "m.csv")
        cmd = [kilnc, "train", os.path.join("models", model + ".kiln"), "-o", os.path.join(tmp, "ckpt.safetensors"),
               "--epochs", str(n_epochs), "--threads", str(threads), "--seed", str(seed),
               "--no-progress", "--metrics", metrics]
        if os.path.realpath(data_dir) != os.path.realpath(DATA_DIR):
            cmd += ["--data", data_dir]  # else the train section's data set, as kilnc finds it
        t0 = time.perf_counter()
        try:
            proc = run(cmd, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunError("`%s` ran past %d s" % (" ".join(cmd), timeout))
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            err = proc.stderr.strip() or proc.stdout.strip()
            flags = EPOCH_FLAGS
            if any(f in err for f in flags) or re.search(r"unknown|unrecognized|not (a )?known", err, re.I):
                raise KilnUnusable("%s's train command rejected the epoch flags (%s): it is not the epoch "
                               "trainer yet (rebuild from a main that has it, or pass --build-dir). It said:\n%s"
                               % (kilnc, " ".join(flags), tail(err, 4)))
            raise RunError("`%s` failed (exit %d):\n%s" % (" ".join(cmd), proc.returncode, tail(err)))
        if not os.path.exists(metrics):
            raise RunError("`%s` wrote no metrics file (exit 0); it printed:\n%s"
                           % (" ".join(cmd), tail(proc.stdout + proc.stderr, 4)))
        with open(metrics, newline="") as f:
            rows = list(csv.reader(f))
    if not rows or rows[0] != METRICS_HEADER:
        raise RunError("%s's metrics header is %s, not %s" % (kilnc, rows[0] if rows else "empty",
                                                             ",".join(METRICS_HEADER)))
    epochs = []
    for row in rows[1:]:
        if not row:
            continue
        rec = {}
        for key, value in zip(METRICS_HEADER, row):
            rec[key] = None if value.strip() == "" else (int(value) if key == "epoch" else float(value))
        epochs.append(rec)
    if not epochs:
        raise RunError("%s's metrics file has no epochs" % kilnc)
    tests = TEST_RE.findall(proc.stdout + "\n" + proc.stderr)
    if not tests:
        raise RunError("`%s` printed no `test: loss L, accuracy A%% (N images)` line:\n%s"
                       % (" ".join(cmd), tail(proc.stdout + proc.stderr)))
    loss, accuracy, images = tests[-1]
    return {"epochs": epochs, "test_loss": float(loss), "test_accuracy": float(accuracy) / 100,
            "test_images": int(images), "process_seconds": wall, "command": " ".join(cmd)}


def torch_epochs(model, spec, threads, n_epochs, seed, clean, data_dir, max_batches, timeout):
    cmd = [PYTHON, os.path.join(HERE, "torch_worker.py"), "epoch", model, str(threads),
           "--spec", json.dumps(spec), "--epochs", str(n_epochs), "--seed", str(seed),
           "--data-dir", data_dir, "--max-batches", str(max_batches)]
    t0 = time.perf_counter()
    try:
        proc = run(cmd, env=torch_env(threads, clean), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError("PyTorch %s on %d threads ran past %d s" % (model, threads, timeout))
    if proc.returncode != 0:
        raise RunError("PyTorch %s on %d threads failed (exit %d):\n%s"
                       % (model, threads, proc.returncode, tail(proc.stderr)))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t0
    return out


def per_epoch(run_):
    """Mean training seconds per epoch."""
    return sum(e["seconds"] for e in run_["epochs"]) / len(run_["epochs"])


def outside_share(run_):
    """Kiln's share of the training time outside the compiled step."""
    total = sum(e["seconds"] for e in run_["epochs"])
    if any(e.get("step_seconds") is None for e in run_["epochs"]) or total <= 0:
        return None
    return (total - sum(e["step_seconds"] for e in run_["epochs"])) / total


# ------------------------------------------------------------------------ report

def fmt_s(v):
    return "—" if v is None else "%.3f" % v if v < 1 else "%.2f" % v if v < 100 else "%.0f" % v


def fmt_x(v):
    return "—" if v is None else "%.2f×" % v


def fmt_pct(v, digits=2):
    return "—" if v is None else "%.*f" % (digits, 100 * v)


def report(meta, rows, errors, clean_env):
    lines = ["# Training epochs: Kiln vs PyTorch", ""]
    if meta["max_batches"]:
        lines += ["**Smoke run: PyTorch trained and tested on only %d batches per epoch "
                  "(`--max-batches`); its times, ratios and accuracies mean nothing.**" % meta["max_batches"], ""]
    blas = meta["torch"]["asis"]
    ob = blas.get("openblas") or {}
    lines += [
        "- date: %s; host: %s" % (meta["date"], meta["host"]),
        "- CPU: %s, %d logical CPUs; avx2: %s, avx512f: %s; load average at start %s, at end %s" % (
            meta["cpu"], meta["nproc"], "yes" if "avx2" in meta["flags"] else "no",
            "yes" if "avx512f" in meta["flags"] else "no", meta["loadavg_start"], meta["loadavg_end"]),
        "- PyTorch: torch %s (%s), eager; BLAS loaded: %s; %s; torch built with %s" % (
            blas["torch_version"], PYTHON, ", ".join(blas["blas_realpaths"]) or "none found",
            ob.get("config", "not OpenBLAS"), meta["torch_blas_info"]),
        "- OpenBLAS kernels: environment as it is → %s%s" % (
            ob.get("corename", "?"),
            "; `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` → %s" % (
                (meta["torch"]["clean"].get("openblas") or {}).get("corename", "?")) if clean_env else ""),
        "- environment: %s" % ", ".join("%s=%s" % (k, os.environ.get(k, "(unset)"))
                                       for k in OPENBLAS_VARS + ("OMP_NUM_THREADS", "HL_NUM_THREADS")),
        "- Kiln: %s (built %s); bench/ checkout at %s" % (meta["kiln"]["kilnc"], meta["kiln"].get("kilnc_mtime", "?"),
                                                  meta["kiln"]["commit"]),
        "- epochs: %d, seed %d, data %s; command: `%s`" % (meta["epochs"], meta["seed"], meta["data_dir"],
                                                         meta["command"]),
        "",
        "s/epoch: the mean wall time of an epoch's training part (shuffle, batches, steps; not the "
        "evaluation). outside step: the share of Kiln's s/epoch spent outside its compiled step. "
        "× same T: PyTorch as is at the same thread count ÷ Kiln. × as is: PyTorch as the environment is, at "
        "its faster thread count ÷ Kiln (target ≥ %g). × best: PyTorch's fastest configuration (any thread "
        "count%s) ÷ Kiln (target ≥ %g). Test accuracy after the same number of epochs; Δ = Kiln − PyTorch "
        "(as is, same threads) in points (target |Δ| ≤ %g). PyTorch runs with %s; thread counts measured: %s." % (
            TARGET_AS_IS, ", either environment" if clean_env else "", TARGET_BEST, TARGET_POINTS,
            "OPENBLAS_NUM_THREADS=T and torch.set_num_threads(T)", ",".join(map(str, meta["threads"]))),
        "",
    ]
    head = ["model", "optimizer", "threads", "Kiln s/epoch", "outside step", "PyTorch s/epoch"]
    if clean_env:
        head.append("PyTorch no OPENBLAS_* s/epoch")
    head += ["× same T", "× as is", "× best", "Kiln test %", "PyTorch test %", "Δ points", "targets"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---|" + "---:|" * (len(head) - 3) + "---|")
    for r in rows:
        cells = [r["model"], r["optimizer"], str(r["threads"]), fmt_s(r.get("kiln_s")),
                 "—" if r.get("kiln_outside") is None else "%.0f%%" % (100 * r["kiln_outside"]),
                 fmt_s(r.get("torch_s"))]
        if clean_env:
            cells.append(fmt_s(r.get("torch_clean_s")))
        cells += [fmt_x(r.get("x_same")), fmt_x(r.get("x_as_is")), fmt_x(r.get("x_best")),
                  fmt_pct(r.get("kiln_acc")), fmt_pct(r.get("torch_acc")),
                  "—" if r.get("delta") is None else "%+.2f" % r["delta"], r["targets"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Per epoch", "",
              "| model | threads | run | epoch | s | step s | train loss | train % | val % | eval s |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for label, key in (("Kiln", "kiln"), ("PyTorch", "torch"), ("PyTorch no OPENBLAS_*", "torch_clean")):
            for e in (r["runs"].get(key) or {}).get("epochs", []):
                lines.append("| %s | %d | %s | %d | %s | %s | %s | %s | %s | %s |" % (
                    r["model"], r["threads"], label, e["epoch"], fmt_s(e.get("seconds")),
                    fmt_s(e.get("step_seconds")),
                    "—" if e.get("train_loss") is None else "%.4f" % e["train_loss"],
                    fmt_pct(e.get("train_accuracy")), fmt_pct(e.get("val_accuracy")),
                    fmt_s(e.get("eval_seconds"))))
    for r in rows:
        k = r["runs"].get("kiln")
        if k and len(k["epochs"]) != meta["epochs"]:
            lines.append("\nNote: Kiln ran %d epoch(s) of %s on %d threads, not %d (early stopping?)."
                         % (len(k["epochs"]), r["model"], r["threads"], meta["epochs"]))
    if errors:
        lines += ["", "## Errors", ""]
        for e in errors:
            lines.append("- " + e.replace("\n", "\n  "))
    return "\n".join(lines) + "\n"


def targets_cell(r):
    marks = []
    for name, value, ok in (("%g× as is" % TARGET_AS_IS, r.get("x_as_is"), lambda v: v >= TARGET_AS_IS),
                            ("%g× best" % TARGET_BEST, r.get("x_best"), lambda v: v >= TARGET_BEST),
                            ("acc", r.get("delta"), lambda v: abs(v) <= TARGET_POINTS)):
        marks.append("?" if value is None else "✓" if ok(value) else "✗ " + name)
    return " ".join(marks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"), help="holds bin/kilnc (default: build)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="FILE", help="also write the report to FILE (raw numbers to FILE.json)")
    parser.add_argument("--save", action="store_true",
                        help="also write it to bench/results/DATE-TIME-epoch-HOST.md (and .json)")
    parser.add_argument("--data-dir", default=DATA_DIR, help="Fashion-MNIST's IDX .gz files (default %(default)s)")
    parser.add_argument("--max-batches", type=int, default=0,
                        help="smoke tests only: PyTorch trains (and tests) on N batches per epoch; "
                             "Kiln still runs whole epochs")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per process (default %(default)s)")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    if args.epochs < 1 or not models or not thread_counts:
        sys.exit("epoch bench: needs --epochs >= 1, some --models and some --threads")
    kilnc = os.path.join(os.path.abspath(args.build_dir), "bin", "kilnc")
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            path = os.path.join(args.data_dir, "%s-%s-ubyte.gz" % (split, kind))
            if not os.path.exists(path):
                sys.exit("epoch bench: no %s (Fashion-MNIST; --data-dir)" % path)
    specs = {}
    for m in models:
        try:
            specs[m] = train_spec(m)
        except (RunError, OSError) as e:
            sys.exit("epoch bench: %s" % e)

    clean_env = any(v in os.environ for v in OPENBLAS_VARS)
    torch = {"asis": torch_info(False)}
    if clean_env:
        torch["clean"] = torch_info(True)
    loaded = torch["asis"]["blas_realpaths"]
    if any(is_reference_blas(p) for p in loaded) or not torch["asis"]["openblas"]:
        sys.exit("epoch bench: PyTorch is not using OpenBLAS (loaded: %s); install libopenblas0-pthread "
                 "(scripts/install-deps.sh bench) so that PyTorch runs at its best" % (", ".join(loaded) or "none"))
    if not any("openblas-pthread" in p for p in loaded):
        log("epoch bench: warning: PyTorch's OpenBLAS is not libopenblas0-pthread's (%s)" % ", ".join(loaded))
    blas_info = re.search(r"BLAS_INFO=([^,\s]+)", torch["asis"]["torch_config"])
    now = datetime.datetime.now()
    meta = {"date": now.strftime("%Y-%m-%d %H:%M"), "host": socket.gethostname(), "cpu": lscpu_model(),
            "flags": sorted(cpu_flags() & {"avx2", "avx512f", "fma"}), "nproc": os.cpu_count(),
            "loadavg_start": " ".join(open("/proc/loadavg").read().split()[:3]), "torch": torch,
            "torch_blas_info": "BLAS_INFO=" + blas_info.group(1) if blas_info else "BLAS_INFO unknown",
            "kiln": kiln_version(kilnc), "epochs": args.epochs, "seed": args.seed, "threads": thread_counts,
            "data_dir": args.data_dir, "max_batches": args.max_batches,
            "command": " ".join(shlex.quote(a) for a in [sys.argv[0]] + sys.argv[1:]),
            "env": {k: os.environ.get(k) for k in OPENBLAS_VARS}}

    rows, errors = [], []
    kiln_unusable = kiln_probe(kilnc)
    if kiln_unusable:
        errors.append("Kiln: %s; only PyTorch was measured" % kiln_unusable)
        log("epoch bench: " + errors[-1])
    for model in models:
        spec = specs[model]
        if spec["early_stopping"]:
            log("epoch bench: %s's train section stops early; PyTorch runs all %d epochs"
                % (model, args.epochs))
        model_rows = []
        for threads in thread_counts:
            r = {"model": model, "threads": threads, "runs": {},
                 "optimizer": "%s, batch %d%s" % (spec["optimizer_text"], spec["batch"],
                                                  ", val %g" % spec["validation"] if spec["validation"] else "")}
            jobs = [] if kiln_unusable else [
                ("kiln", lambda: kiln_epochs(kilnc, model, threads, args.epochs, args.seed, args.timeout,
                                      args.data_dir))]
            for key, clean in (("torch", False), ("torch_clean", True)) if clean_env else (("torch", False),):
                jobs.append((key, lambda clean=clean: torch_epochs(
                    model, spec, threads, args.epochs, args.seed, clean, args.data_dir, args.max_batches,
                    args.timeout)))
            for key, job in jobs:
                log("epoch bench: %s, %d thread(s), %s ..." % (model, threads, key))
                try:
                    r["runs"][key] = job()
                except KilnUnusable as e:
                    kiln_unusable = str(e)
                    errors.append("Kiln: %s; no further Kiln runs" % e)
                    log("epoch bench: " + errors[-1])
                except RunError as e:
                    errors.append("%s, %d thread(s), %s: %s" % (model, threads, key, e))
                    log("epoch bench: " + errors[-1])
            if "kiln" in r["runs"]:
                r["kiln_s"] = per_epoch(r["runs"]["kiln"])
                r["kiln_outside"] = outside_share(r["runs"]["kiln"])
                r["kiln_acc"] = r["runs"]["kiln"]["test_accuracy"]
            if "torch" in r["runs"]:
                r["torch_s"] = per_epoch(r["runs"]["torch"])
                r["torch_acc"] = r["runs"]["torch"]["test_accuracy"]
            if "torch_clean" in r["runs"]:
                r["torch_clean_s"] = per_epoch(r["runs"]["torch_clean"])
            model_rows.append(r)
            sys.stdout.flush()
        # PyTorch's faster thread count (as is) and its best configuration.
        as_is = [r["torch_s"] for r in model_rows if r.get("torch_s")]
        best = as_is + [r["torch_clean_s"] for r in model_rows if r.get("torch_clean_s")]
        for r in model_rows:
            k = r.get("kiln_s")
            if k:
                r["x_same"] = r["torch_s"] / k if r.get("torch_s") else None
                r["x_as_is"] = min(as_is) / k if as_is else None
                r["x_best"] = min(best) / k if best else None
            if r.get("kiln_acc") is not None and r.get("torch_acc") is not None:
                r["delta"] = 100 * (r["kiln_acc"] - r["torch_acc"])
            r["targets"] = targets_cell(r)
        rows += model_rows
    meta["loadavg_end"] = " ".join(open("/proc/loadavg").read().split()[:3])

    text = report(meta, rows, errors, clean_env)
    print(text, end="")
    paths = []
    if args.out:
        paths.append(args.out)
    if args.save:
        paths.append(os.path.join(HERE, "results", "%s-epoch-%s.md" % (now.strftime("%Y-%m-%d-%H%M"), meta["host"])))
    for path in paths:
        with open(path, "w") as f:
            f.write(text)
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump({"meta": meta, "rows": rows, "errors": errors}, f, indent=1)
        log("epoch bench: wrote %s (and its .json)" % path)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
