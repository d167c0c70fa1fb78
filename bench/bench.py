#!/usr/bin/python3
"""Kiln vs PyTorch inference benchmark: one run, side by side, with ratios.

For every tutorial model x batch x thread count it times
  - Kiln's generated executable (`<exe> --bench`),
  - PyTorch eager and TorchScript-frozen, in the environment as it is,
  - the same two with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`
    (OpenBLAS picks its AVX-512 kernels),
each in a fresh process, repeated over several processes (median of the
per-process medians), interleaved so that machine noise hits all alike.
It also measures the machine's FP32 FMA peak (bench/peak.c) in the same run.

Run through bench/run.sh (which checks the prerequisites); see bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"

ALL_MODELS = ["simple_net", "mlp_bn", "batchnorm_net", "simple_nn", "simple_nn_bn", "lenet_bn", "lenet"]
QUICK_MODELS = ["mlp_bn", "lenet_bn"]
MLP_MODELS = ["mlp_bn", "batchnorm_net", "simple_nn", "simple_nn_bn"]  # for the % of peak target
BLAS_ALTERNATIVE = "libblas.so.3-x86_64-linux-gnu"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ENVS = ("asis", "avx512")  # PyTorch environments: as it is; without OPENBLAS_VARS

BENCH_RE = re.compile(r"bench: model (\S+) batch (\d+) iterations (\d+) median_us ([\d.]+) "
                      r"min_us ([\d.]+) peak_rss_kb (\d+)")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=600, check=True):
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise BenchError("command failed (%d): %s\n%s%s" % (
            proc.returncode, " ".join(shlex.quote(c) for c in cmd), proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc


def csv_list(text, cast=str):
    return [cast(t) for t in text.split(",") if t.strip()]


# ---------------------------------------------------------------- machine facts

def lscpu_model():
    try:
        for line in run(["lscpu"]).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (BenchError, OSError):
        pass
    return platform.processor() or "unknown"


def lscpu_family_model():
    fam = mod = None
    try:
        for line in run(["lscpu"]).stdout.splitlines():
            if line.startswith("CPU family:"):
                fam = line.split(":", 1)[1].strip()
            elif line.startswith("Model:"):
                mod = line.split(":", 1)[1].strip()
    except (BenchError, OSError):
        pass
    return fam, mod


def blas_alternative():
    """-> (the path libblas.so.3 currently points to, or None; the raw text)."""
    try:
        proc = run(["update-alternatives", "--display", BLAS_ALTERNATIVE], check=False)
    except OSError:
        return None, "update-alternatives not found"
    text = proc.stdout + proc.stderr
    m = re.search(r"link currently points to (\S+)", text)
    return (m.group(1) if m else None), text.strip()


def is_reference_blas(path):
    real = os.path.realpath(path)
    return "openblas" not in real.lower() and ("/blas/" in real or os.path.basename(real).startswith("libblas"))


def torch_env(kind, threads):
    """Environment for one PyTorch process: as it is, or without OPENBLAS_VARS.

    OPENBLAS_NUM_THREADS is set to the thread count in both (torch.set_num_threads
    does not reach OpenBLAS's own pthread pool, which would use every core)."""
    env = dict(os.environ)
    if kind == "avx512":
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def torch_info(kind):
    proc = run([PYTHON, os.path.join(HERE, "torch_worker.py"), "info"], env=torch_env(kind, 1))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_peak(work, threads):
    exe = os.path.join(work, "peak")
    run(["cc", "-O2", "-mavx512f", "-mfma", "-pthread", os.path.join(HERE, "peak.c"), "-o", exe])
    proc = run([exe] + [str(t) for t in threads])
    peaks = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"peak: threads (\d+) gflops ([\d.]+)", line)
        if m:
            peaks[int(m.group(1))] = float(m.group(2))
    return peaks


# ---------------------------------------------------------------- Kiln side

def kiln_flops(kilnc, model):
    out = run([kilnc, "check", os.path.join("models", model + ".kiln")]).stdout
    m = re.search(r"FLOPs per sample:\s*([\d,]+)", out)
    if not m:
        raise BenchError("no 'FLOPs per sample' line in kilnc check output for %s" % model)
    return int(m.group(1).replace(",", ""))


def kiln_build(kilnc, model, work):
    exe = os.path.join(work, model)
    t0 = time.time()
    run([kilnc, "build", os.path.join("models", model + ".kiln"),
         "--weights", os.path.join("test", "fixtures", model, "weights.safetensors"), "-o", exe])
    return exe, time.time() - t0


def kiln_bench(exe, batch, threads, iterations):
    cmd = [exe, "--bench", "--batch", str(batch), "--threads", str(threads)]
    if iterations:
        cmd += ["--iterations", str(iterations)]
    out = run(cmd).stdout
    m = BENCH_RE.search(out)
    if not m:
        raise BenchError("no bench line from %s: %r" % (" ".join(cmd), out[-500:]))
    return {"iterations": int(m.group(3)), "median_us": float(m.group(4)),
            "min_us": float(m.group(5)), "peak_rss_kb": int(m.group(6))}


def torch_measure(model, batch, threads, kind, seconds):
    cmd = [PYTHON, os.path.join(HERE, "torch_worker.py"), "measure", model, str(batch), str(threads),
           "--seconds", str(seconds)]
    proc = run(cmd, env=torch_env(kind, threads), timeout=900)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench_config(exe, model, batch, threads, processes, seconds):
    """All measurements of one (model, batch, threads), interleaved per process."""
    rec = {"model": model, "batch": batch, "threads": threads,
           "kiln_runs": [], "torch_runs": {k: [] for k in ENVS}, "errors": []}
    iterations = None
    if exe:
        try:  # a short probe to size the timed loop at about `seconds`
            probe = kiln_bench(exe, batch, threads, 20)
            iterations = int(min(200000, max(20, seconds * 1e6 / max(probe["median_us"], 0.01))))
        except BenchError as e:
            rec["errors"].append("kiln: %s" % e)
            exe = None
    for _ in range(processes):
        if exe:
            try:
                rec["kiln_runs"].append(kiln_bench(exe, batch, threads, iterations))
            except BenchError as e:
                rec["errors"].append("kiln: %s" % e)
        for kind in ENVS:
            try:
                rec["torch_runs"][kind].append(torch_measure(model, batch, threads, kind, seconds))
            except (BenchError, subprocess.TimeoutExpired, ValueError) as e:
                rec["errors"].append("torch %s: %s" % (kind, e))
    rec["kiln_us"] = median(r["median_us"] for r in rec["kiln_runs"])
    rec["kiln_rss_kb"] = max((r["peak_rss_kb"] for r in rec["kiln_runs"]), default=None)
    for kind in ENVS:
        runs = rec["torch_runs"][kind]
        rec["%s_eager_us" % kind] = median(r["eager"]["median_us"] for r in runs)
        rec["%s_frozen_us" % kind] = median(r["frozen"]["median_us"] for r in runs)
        rec["%s_rss_kb" % kind] = max((r["peak_rss_kb"] for r in runs), default=None)
    return rec


def ratio(torch_us, kiln_us):
    if torch_us is None or not kiln_us:
        return None
    return torch_us / kiln_us


def derive(rec, flops, peaks):
    k = rec["kiln_us"]
    for kind in ENVS:
        for mode in ("eager", "frozen"):
            rec["%s_%s_ratio" % (kind, mode)] = ratio(rec["%s_%s_us" % (kind, mode)], k)
    if k and flops:
        rec["kiln_gflops"] = flops * rec["batch"] / k / 1e3
        peak = peaks.get(rec["threads"])
        rec["kiln_pct_peak"] = 100.0 * rec["kiln_gflops"] / peak if peak else None
    else:
        rec["kiln_gflops"] = rec["kiln_pct_peak"] = None


# ---------------------------------------------------------------- report

def fmt_us(v):
    if v is None:
        return "—"
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 100 else "%.0f" % v


def fmt_x(v):
    return "—" if v is None else "%.2f×" % v


def fmt_mb(kb):
    return "—" if kb is None else "%.0f" % (kb / 1024.0) if kb >= 10240 else "%.1f" % (kb / 1024.0)


def table(records):
    head = ["model", "batch", "thr", "Kiln µs",
            "eager µs", "frozen µs", "eager/Kiln", "frozen/Kiln",
            "eager₅₁₂ µs", "frozen₅₁₂ µs", "eager₅₁₂/Kiln", "frozen₅₁₂/Kiln",
            "Kiln GFLOP/s", "% peak", "RSS Kiln MB", "RSS torch MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for r in records:
        rss_t = max([v for v in (r.get("asis_rss_kb"), r.get("avx512_rss_kb")) if v is not None], default=None)
        row = [r["model"], str(r["batch"]), str(r["threads"]), fmt_us(r["kiln_us"]),
               fmt_us(r["asis_eager_us"]), fmt_us(r["asis_frozen_us"]),
               fmt_x(r["asis_eager_ratio"]), fmt_x(r["asis_frozen_ratio"]),
               fmt_us(r["avx512_eager_us"]), fmt_us(r["avx512_frozen_us"]),
               fmt_x(r["avx512_eager_ratio"]), fmt_x(r["avx512_frozen_ratio"]),
               "—" if r["kiln_gflops"] is None else "%.1f" % r["kiln_gflops"],
               "—" if r["kiln_pct_peak"] is None else "%.0f%%" % r["kiln_pct_peak"],
               fmt_mb(r["kiln_rss_kb"]), fmt_mb(rss_t)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


TARGETS = [
    # (description, row filter, value key, threshold)
    ("batch 1: ≥ 8× PyTorch eager (as-is env)",
     lambda r: r["batch"] == 1, "asis_eager_ratio", 8.0),
    ("batch 1: ≥ 4× TorchScript-frozen (as-is env)",
     lambda r: r["batch"] == 1, "asis_frozen_ratio", 4.0),
    ("batch 64 and 1024: ≥ 2× PyTorch eager (as-is env)",
     lambda r: r["batch"] in (64, 1024), "asis_eager_ratio", 2.0),
    ("batch 64: ≥ 1.3× PyTorch eager with AVX-512 OpenBLAS",
     lambda r: r["batch"] == 64, "avx512_eager_ratio", 1.3),
    ("MLP models (%s), batch ≥ 64: ≥ 70%% of measured peak (whole model)" % ", ".join(MLP_MODELS),
     lambda r: r["batch"] >= 64 and r["model"] in MLP_MODELS, "kiln_pct_peak", 70.0),
    ("lenet_bn: ≥ 3× PyTorch eager (as-is env)",
     lambda r: r["model"] == "lenet_bn", "asis_eager_ratio", 3.0),
    ("lenet_bn: ≥ 3× the best PyTorch (min of the four PyTorch columns)",
     lambda r: r["model"] == "lenet_bn", "best_ratio", 3.0),
]


def targets(records):
    for r in records:
        vals = [r.get("%s_%s_ratio" % (k, m)) for k in ENVS for m in ("eager", "frozen")]
        vals = [v for v in vals if v is not None]
        r["best_ratio"] = min(vals) if vals else None
    lines = ["| target | met | worst |", "|---|---:|---|"]
    for desc, keep, key, threshold in TARGETS:
        rows = [r for r in records if keep(r) and r.get(key) is not None]
        if not rows:
            continue
        met = sum(1 for r in rows if r[key] >= threshold)
        worst = min(rows, key=lambda r: r[key])
        value = ("%.0f%%" if key == "kiln_pct_peak" else "%.2f×") % worst[key]
        lines.append("| %s | %d / %d | %s b%d %dT: %s |" % (
            desc, met, len(rows), worst["model"], worst["batch"], worst["threads"], value))
    return "\n".join(lines)


def spread(records):
    """Configurations whose per-process medians differ by more than 1.5x."""
    out = []
    for r in records:
        series = [("Kiln", [x["median_us"] for x in r["kiln_runs"]])]
        for kind in ENVS:
            for mode in ("eager", "frozen"):
                series.append(("%s %s" % (mode, kind), [x[mode]["median_us"] for x in r["torch_runs"][kind]]))
        for name, values in series:
            if len(values) > 1 and max(values) > 1.5 * min(values):
                out.append("%s b%d %dT %s: %s µs" % (r["model"], r["batch"], r["threads"], name,
                                                     ", ".join(fmt_us(v) for v in values)))
    return out


def header(meta):
    t = meta["torch"]["asis"]
    cores = {k: (meta["torch"][k].get("openblas") or {}).get("corename") for k in ENVS}
    envs = meta["env"]
    lines = [
        "# Kiln vs PyTorch inference benchmark",
        "",
        "- date: %s" % meta["date"],
        "- host: %s; CPU: %s (family %s, model %s), %s logical CPUs; load average at start %s, at end %s" % (
            meta["host"], meta["cpu"], meta["cpu_family"], meta["cpu_model"], meta["nproc"],
            meta["loadavg_start"], meta.get("loadavg_end", "?")),
        "- measured FP32 FMA peak (bench/peak.c, best of start and end): %s (start: %s; end: %s)" % (
            ", ".join("%dT %.1f GFLOP/s" % (k, v) for k, v in sorted(meta["peak_gflops"].items())),
            ", ".join("%.1f" % v for _, v in sorted(meta["peak_gflops_start"].items())),
            ", ".join("%.1f" % v for _, v in sorted(meta.get("peak_gflops_end", {}).items()))),
        "- torch %s (%s); ATen backend: %s" % (
            t["torch_version"], PYTHON,
            "OpenMP" if "OpenMP" in t["parallel_info"] else "see JSON"),
        "- BLAS: libblas.so.3 → %s; loaded: %s" % (meta["blas_alternative"], ", ".join(t["blas_realpaths"])),
        "- OpenBLAS kernels: as-is env → %s; `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` → %s" % (
            cores["asis"], cores["avx512"]),
        "- environment as it is: %s" % ", ".join("%s=%s" % (k, envs.get(k) if envs.get(k) is not None else "(unset)")
                                                for k in OPENBLAS_VARS + ("OMP_NUM_THREADS",)),
        "- Kiln: %s (build %s); each Kiln executable built in %s s" % (
            meta["kilnc"], meta["kilnc_mtime"], meta["build_seconds"]),
        "- processes per measurement: %d (median of per-process medians); about %.1f s of timed calls each" % (
            meta["processes"], meta["seconds"]),
        "- command: `%s`" % meta["command"],
    ]
    if cores["asis"] == cores["avx512"]:
        lines.append("- note: both PyTorch environments picked the same OpenBLAS kernels (%s), so the ₅₁₂ columns "
                     "repeat the as-is ones (OPENBLAS_CORETYPE is not set here)" % cores["asis"])
    lines += [
        "",
        "Times are medians in µs per inference call of the whole batch. Ratios are PyTorch time / Kiln time "
        "(> 1: Kiln is faster). eager/frozen: PyTorch in the environment as it is; ₅₁₂: with "
        "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` (AVX-512 OpenBLAS). % peak: Kiln GFLOP/s (FLOPs per "
        "sample from `kilnc check` × batch / time) over the measured peak at that thread count. RSS: peak "
        "resident set of the measuring process (PyTorch's includes the torch import).",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build", help="Kiln build directory holding bin/kilnc (default build)")
    ap.add_argument("--quick", action="store_true",
                    help="batch 1 and 64, 1 process each, models %s" % ",".join(QUICK_MODELS))
    ap.add_argument("--models", help="comma-separated subset of %s" % ",".join(ALL_MODELS))
    ap.add_argument("--batches", help="comma-separated batch sizes (default 1,64,1024)")
    ap.add_argument("--threads", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--processes", type=int, help="processes per measurement (default 3; 1 with --quick)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement (default 1)")
    ap.add_argument("--work-dir", default=os.path.join(HERE, ".work"), help="where executables are built")
    ap.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-save", action="store_true", help="print only, write nothing to results/")
    args = ap.parse_args()

    models = csv_list(args.models) if args.models else (QUICK_MODELS if args.quick else ALL_MODELS)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        ap.error("unknown model(s): %s (known: %s)" % (", ".join(unknown), ", ".join(ALL_MODELS)))
    batches = csv_list(args.batches, int) if args.batches else ([1, 64] if args.quick else [1, 64, 1024])
    threads = csv_list(args.threads, int) if args.threads else [1, 2]
    processes = args.processes or (1 if args.quick else 3)
    if min(batches) < 1 or min(threads) < 1 or processes < 1:
        ap.error("batches, threads and processes must be positive")

    kilnc = os.path.join(args.build_dir, "bin", "kilnc")
    if not os.path.isabs(kilnc):
        kilnc = os.path.join(ROOT, kilnc)
    if not os.access(kilnc, os.X_OK):
        raise SystemExit("bench: %s not found; build Kiln first (make build, or --build-dir DIR)" % kilnc)

    # BLAS: refuse the reference BLAS, the ratios would be meaningless.
    alt, alt_text = blas_alternative()
    info = {k: torch_info(k) for k in ENVS}
    loaded = info["asis"]["blas_realpaths"]
    if (alt and is_reference_blas(alt)) or any(is_reference_blas(p) for p in loaded) or not info["asis"]["openblas"]:
        raise SystemExit(
            "bench: PyTorch is using the reference BLAS (libblas.so.3 -> %s; loaded: %s).\n"
            "Its Linear layers run 15-30x slower, so the ratios would be meaningless. Install OpenBLAS:\n"
            "  sudo apt-get install -y libopenblas0-pthread   (or: scripts/install-deps.sh bench)\n"
            "and check `update-alternatives --display %s` points to openblas-pthread."
            % (alt, ", ".join(loaded) or "none", BLAS_ALTERNATIVE))

    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    now = datetime.datetime.now()
    fam, mod = lscpu_family_model()
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M:%S"),
        "host": socket.gethostname(),
        "cpu": lscpu_model(), "cpu_family": fam, "cpu_model": mod, "nproc": os.cpu_count(),
        "loadavg_start": open("/proc/loadavg").read().split()[0],
        "blas_alternative": alt, "blas_alternative_display": alt_text,
        "torch": info,
        "env": {k: os.environ.get(k) for k in OPENBLAS_VARS + ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "kilnc": os.path.relpath(kilnc, ROOT),
        "kilnc_mtime": datetime.datetime.fromtimestamp(os.path.getmtime(kilnc)).strftime("%Y-%m-%d %H:%M"),
        "processes": processes, "seconds": args.seconds,
        "models": models, "batches": batches, "threads": threads,
        "command": os.environ.get("KILN_BENCH_COMMAND") or " ".join(shlex.quote(a) for a in sys.argv),
    }
    try:
        meta["git_head"] = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
    except (BenchError, OSError):
        meta["git_head"] = None

    log("bench: measuring the FMA peak ...")
    meta["peak_gflops_start"] = measure_peak(work, sorted(set(threads)))
    meta["peak_gflops"] = dict(meta["peak_gflops_start"])
    log("bench: peak %s GFLOP/s" % meta["peak_gflops"])

    exes, flops, build_times, errors = {}, {}, [], []
    for m in models:
        try:
            flops[m] = kiln_flops(kilnc, m)
            exes[m], dt = kiln_build(kilnc, m, work)
            build_times.append(dt)
        except BenchError as e:
            errors.append("%s: %s" % (m, e))
            exes[m] = None
            log("bench: Kiln build of %s failed; PyTorch columns only\n%s" % (m, e))
    meta["build_seconds"] = "%.1f" % median(build_times) if build_times else "—"

    records = []
    total = len(models) * len(batches) * len(threads)
    t_start = time.time()
    for m in models:
        for b in batches:
            for t in threads:
                log("bench: [%d/%d] %s batch %d threads %d ..." % (len(records) + 1, total, m, b, t))
                rec = bench_config(exes[m], m, b, t, processes, args.seconds)
                derive(rec, flops.get(m), meta["peak_gflops"])
                records.append(rec)
                log("bench:   Kiln %s µs, eager %s µs (%s), frozen %s µs (%s)" % (
                    fmt_us(rec["kiln_us"]), fmt_us(rec["asis_eager_us"]), fmt_x(rec["asis_eager_ratio"]),
                    fmt_us(rec["asis_frozen_us"]), fmt_x(rec["asis_frozen_ratio"])))
                errors += ["%s b%d %dT: %s" % (m, b, t, e) for e in rec["errors"]]
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[0]
    # The peak again at the end: a busy machine lowers it, so keep the best of the two
    # and recompute % of peak with it.
    meta["peak_gflops_end"] = measure_peak(work, sorted(set(threads)))
    meta["peak_gflops"] = {t: max(v, meta["peak_gflops_end"].get(t, 0.0))
                           for t, v in meta["peak_gflops_start"].items()}
    for rec in records:
        derive(rec, flops.get(rec["model"]), meta["peak_gflops"])
    meta["wall_seconds"] = round(time.time() - t_start, 1)
    meta["flops_per_sample"] = flops

    report = "\n\n".join([header(meta), table(records), "## Targets (from the inference issue)\n\n" + targets(records)])
    noisy = spread(records)
    if noisy:
        report += ("\n\n## Unstable measurements\n\nPer-process medians differing by more than 1.5× "
                   "(OpenBLAS/OpenMP bimodality or machine load; the table shows the median process):\n\n"
                   + "\n".join("- " + n for n in noisy))
    if errors:
        report += "\n\n## Errors\n\n" + "\n".join("- " + e.replace("\n", " ")[:400] for e in errors)
    report += "\n"
    print(report)
    if not args.no_save:
        os.makedirs(args.results_dir, exist_ok=True)
        stem = os.path.join(args.results_dir, "%s-%s" % (now.strftime("%Y-%m-%d-%H%M"), meta["host"]))
        with open(stem + ".md", "w") as f:
            f.write(report)
        with open(stem + ".json", "w") as f:
            json.dump({"meta": meta, "records": records, "errors": errors}, f, indent=1)
        log("bench: wrote %s.md and %s.json" % (stem, stem))
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        raise SystemExit("bench: %s" % e)
