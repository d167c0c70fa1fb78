#!/usr/bin/python3
"""Kiln vs PyTorch inference benchmark: one run, side by side, with ratios.

For every tutorial model x batch x thread count it times
  - Kiln's generated executable (`<exe> --bench`), built for the host
    (`kilnc build`'s default `--target=host`) and, on an AVX-512 machine,
    also for AVX2 (`--target=x86-64-linux-avx2-fma`), so that one machine
    measures both x86 schedule families,
  - PyTorch eager and TorchScript-frozen, in the environment as it is,
  - the same two with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`
    (OpenBLAS picks its AVX-512 kernels),
each in a fresh process, repeated over several processes (median of the
per-process medians), interleaved so that machine noise hits all alike.
It also measures the machine's FP32 FMA peak for each ISA a build targets
(bench/peak.c: AVX-512 zmm, AVX2 ymm) in the same run, and names the ISA and
Halide's host target (bench/halide_target.cpp) in the report.

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

# The vector ISAs bench/peak.c measures, widest first, with the /proc/cpuinfo
# flags each needs and how the report names it.
ISAS = {
    "avx512": {"flags": ("avx512f", "fma"), "name": "AVX-512", "kernel": "16 chains of zmm FMAs"},
    "avx2": {"flags": ("avx2", "fma"), "name": "AVX2", "kernel": "12 chains of ymm FMAs"},
}
# The Kiln builds: `native` is kilnc's default (`--target=host`), timed against
# the peak of the widest ISA the CPU has; `avx2` is built only where that ISA
# is AVX-512, so one AVX-512 machine measures both x86 schedule families.
AVX2_TARGET = "x86-64-linux-avx2-fma"

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


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_isa(flags):
    """The widest FMA ISA of this CPU ('avx512' or 'avx2'), or None."""
    for isa, desc in ISAS.items():
        if all(f in flags for f in desc["flags"]):
            return isa
    return None


def halide_host_target(work, flags):
    """-> (Halide's host target string, f32 lanes or None, how it was found).

    Asks Halide (bench/halide_target.cpp, built here against libHalide14);
    where that does not build, approximates the string from the CPU flags."""
    exe = os.path.join(work, "halide_target")
    src = os.path.join(HERE, "halide_target.cpp")
    try:
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            run(["c++", "-std=c++17", "-O1", "-I/usr/include/halide14", src, "-lHalide14", "-o", exe])
        out = run([exe]).stdout
        target = re.search(r"halide_host_target: (\S+)", out).group(1)
        lanes = int(re.search(r"f32_lanes: (\d+)", out).group(1))
        return target, lanes, "Halide::get_host_target()"
    except (BenchError, OSError, AttributeError) as e:
        log("bench: could not ask Halide for the host target (%s); approximating it from /proc/cpuinfo"
            % str(e).splitlines()[0])
    features = [name for name, flag in (("avx", "avx"), ("avx2", "avx2"), ("avx512", "avx512f"),
                                        ("f16c", "f16c"), ("fma", "fma"), ("sse41", "sse4_1")) if flag in flags]
    lanes = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    return "-".join(["x86-64-linux"] + features), lanes, "approximated from /proc/cpuinfo flags"


def build_peak(work):
    exe = os.path.join(work, "peak")
    # One binary for every ISA: peak.c compiles each kernel with __attribute__((target)).
    run(["cc", "-O2", "-pthread", os.path.join(HERE, "peak.c"), "-o", exe])
    return exe


def measure_peak(exe, isas, threads):
    """-> {isa: {threads: GFLOP/s}} for each ISA in `isas`."""
    peaks = {}
    for isa in isas:
        proc = run([exe, "--isa", isa] + [str(t) for t in threads])
        peaks[isa] = {}
        for line in proc.stdout.splitlines():
            m = re.match(r"peak: isa (\S+) threads (\d+) gflops ([\d.]+)", line)
            if m:
                peaks[isa][int(m.group(2))] = float(m.group(3))
    return peaks


# ---------------------------------------------------------------- Kiln side

def kiln_flops(kilnc, model):
    out = run([kilnc, "check", os.path.join("models", model + ".kiln")]).stdout
    m = re.search(r"FLOPs per sample:\s*([\d,]+)", out)
    if not m:
        raise BenchError("no 'FLOPs per sample' line in kilnc check output for %s" % model)
    return int(m.group(1).replace(",", ""))


def kiln_build(kilnc, model, work, build):
    # One folder per build: the executable's name is the model's (the C API is named after it).
    exe = os.path.join(work, model) if build["target"] is None else os.path.join(work, build["id"], model)
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    cmd = [kilnc, "build", os.path.join("models", model + ".kiln"),
           "--weights", os.path.join("test", "fixtures", model, "weights.safetensors"), "-o", exe]
    if build["target"] is not None:
        cmd.append("--target=%s" % build["target"])
    t0 = time.time()
    run(cmd)
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


def bench_config(exes, model, batch, threads, processes, seconds):
    """All measurements of one (model, batch, threads), interleaved per process.

    `exes` maps each build id to its executable (None where the build failed)."""
    rec = {"model": model, "batch": batch, "threads": threads,
           "kiln": {b: {"runs": []} for b in exes},
           "torch_runs": {k: [] for k in ENVS}, "errors": []}
    iterations, live = {}, {}
    for b, exe in exes.items():
        if not exe:
            continue
        try:  # a short probe to size the timed loop at about `seconds`
            probe = kiln_bench(exe, batch, threads, 20)
            iterations[b] = int(min(200000, max(20, seconds * 1e6 / max(probe["median_us"], 0.01))))
            live[b] = exe
        except BenchError as e:
            rec["errors"].append("kiln %s: %s" % (b, e))
    for _ in range(processes):
        for b, exe in live.items():
            try:
                rec["kiln"][b]["runs"].append(kiln_bench(exe, batch, threads, iterations[b]))
            except BenchError as e:
                rec["errors"].append("kiln %s: %s" % (b, e))
        for kind in ENVS:
            try:
                rec["torch_runs"][kind].append(torch_measure(model, batch, threads, kind, seconds))
            except (BenchError, subprocess.TimeoutExpired, ValueError) as e:
                rec["errors"].append("torch %s: %s" % (kind, e))
    for k in rec["kiln"].values():
        k["us"] = median(r["median_us"] for r in k["runs"])
        k["rss_kb"] = max((r["peak_rss_kb"] for r in k["runs"]), default=None)
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


def derive(rec, flops, peaks, builds):
    """Ratios, GFLOP/s and % of the peak of each build's ISA, per build."""
    for b, k in rec["kiln"].items():
        us = k["us"]
        for kind in ENVS:
            for mode in ("eager", "frozen"):
                k["%s_%s_ratio" % (kind, mode)] = ratio(rec["%s_%s_us" % (kind, mode)], us)
        if us and flops:
            k["gflops"] = flops * rec["batch"] / us / 1e3
            peak = peaks.get(builds[b]["isa"], {}).get(rec["threads"])
            k["pct_peak"] = 100.0 * k["gflops"] / peak if peak else None
        else:
            k["gflops"] = k["pct_peak"] = None


# ---------------------------------------------------------------- report

def fmt_us(v):
    if v is None:
        return "—"
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 100 else "%.0f" % v


def fmt_x(v):
    return "—" if v is None else "%.2f×" % v


def fmt_mb(kb):
    return "—" if kb is None else "%.0f" % (kb / 1024.0) if kb >= 10240 else "%.1f" % (kb / 1024.0)


# The targets of the inference issue, each against PyTorch eager in the
# environment as it is, at the same thread count; % of peak is of the peak of
# the ISA the build targets.
# (short label for the rows, description, row filter, value key in the build's record, threshold)
TARGETS = [
    ("≥8×", "batch 1: ≥ 8× PyTorch eager",
     lambda r: r["batch"] == 1, "asis_eager_ratio", 8.0),
    ("≥2×", "batch ≥ 64 (64, 1024), 2 threads: ≥ 2× PyTorch eager",
     lambda r: r["batch"] >= 64 and r["threads"] >= 2, "asis_eager_ratio", 2.0),
    ("≥1.3×", "batch ≥ 64 (64, 1024), 1 thread: ≥ 1.3× PyTorch eager",
     lambda r: r["batch"] >= 64 and r["threads"] == 1, "asis_eager_ratio", 1.3),
    ("≥70% peak", "MLP models (%s), batch ≥ 64: ≥ 70%% of the ISA's measured peak (whole model)"
     % ", ".join(MLP_MODELS),
     lambda r: r["batch"] >= 64 and r["model"] in MLP_MODELS, "pct_peak", 70.0),
    ("lenet_bn ≥3×", "lenet_bn: ≥ 3× PyTorch eager",
     lambda r: r["model"] == "lenet_bn", "asis_eager_ratio", 3.0),
]


def fmt_target_value(key, v):
    return ("%.0f%%" if key == "pct_peak" else "%.2f×") % v


def row_targets(r, b):
    """The targets that apply to row r of build b: '✓ ≥8×', '✗ ≥2× (1.45×)', '? ...' (not measured)."""
    k = r["kiln"][b]
    out = []
    for label, _, keep, key, threshold in TARGETS:
        if not keep(r):
            continue
        v = k.get(key)
        if v is None:
            out.append("? " + label)
        elif v >= threshold:
            out.append("✓ " + label)
        else:
            out.append("✗ %s (%s)" % (label, fmt_target_value(key, v)))
    return ", ".join(out) or "—"


def table(records, b, isa_name):
    head = ["model", "batch", "thr", "Kiln µs",
            "eager µs", "frozen µs", "eager/Kiln", "frozen/Kiln",
            "eager₅₁₂ µs", "frozen₅₁₂ µs", "eager₅₁₂/Kiln", "frozen₅₁₂/Kiln",
            "Kiln GFLOP/s", "%% %s peak" % isa_name, "RSS Kiln MB", "RSS torch MB", "targets"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 4) + ["---"]) + "|"]
    for r in records:
        k = r["kiln"][b]
        rss_t = max([v for v in (r.get("asis_rss_kb"), r.get("avx512_rss_kb")) if v is not None], default=None)
        row = [r["model"], str(r["batch"]), str(r["threads"]), fmt_us(k["us"]),
               fmt_us(r["asis_eager_us"]), fmt_us(r["asis_frozen_us"]),
               fmt_x(k["asis_eager_ratio"]), fmt_x(k["asis_frozen_ratio"]),
               fmt_us(r["avx512_eager_us"]), fmt_us(r["avx512_frozen_us"]),
               fmt_x(k["avx512_eager_ratio"]), fmt_x(k["avx512_frozen_ratio"]),
               "—" if k["gflops"] is None else "%.1f" % k["gflops"],
               "—" if k["pct_peak"] is None else "%.0f%%" % k["pct_peak"],
               fmt_mb(k["rss_kb"]), fmt_mb(rss_t), row_targets(r, b)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(records, b):
    lines = ["| target | met | worst |", "|---|---:|---|"]
    for _, desc, keep, key, threshold in TARGETS:
        rows = [r for r in records if keep(r) and r["kiln"][b].get(key) is not None]
        if not rows:
            continue
        met = sum(1 for r in rows if r["kiln"][b][key] >= threshold)
        worst = min(rows, key=lambda r: r["kiln"][b][key])
        lines.append("| %s | %d / %d | %s b%d %dT: %s |" % (
            desc, met, len(rows), worst["model"], worst["batch"], worst["threads"],
            fmt_target_value(key, worst["kiln"][b][key])))
    if len(lines) == 2:
        return "No row of this build was measured."
    return "\n".join(lines)


def spread(records, builds):
    """Configurations whose per-process medians differ by more than 1.5x."""
    out = []
    for r in records:
        series = [("Kiln %s" % b, [x["median_us"] for x in r["kiln"][b]["runs"]]) for b in builds]
        for kind in ENVS:
            for mode in ("eager", "frozen"):
                series.append(("%s %s" % (mode, kind), [x[mode]["median_us"] for x in r["torch_runs"][kind]]))
        for name, values in series:
            if len(values) > 1 and max(values) > 1.5 * min(values):
                out.append("%s b%d %dT %s: %s µs" % (r["model"], r["batch"], r["threads"], name,
                                                     ", ".join(fmt_us(v) for v in values)))
    return out


def fmt_peaks(peaks, isa):
    return ", ".join("%dT %.1f" % (t, v) for t, v in sorted(peaks.get(isa, {}).items())) or "—"


def header(meta, builds):
    t = meta["torch"]["asis"]
    cores = {k: (meta["torch"][k].get("openblas") or {}).get("corename") for k in ENVS}
    envs = meta["env"]
    isa = meta["isa"]
    lines = [
        "# Kiln vs PyTorch inference benchmark",
        "",
        "- date: %s" % meta["date"],
        "- host: %s; CPU: %s (family %s, model %s), %s logical CPUs; load average at start %s, at end %s" % (
            meta["host"], meta["cpu"], meta["cpu_family"], meta["cpu_model"], meta["nproc"],
            meta["loadavg_start"], meta.get("loadavg_end", "?")),
        "- ISA: %s (the widest FMA in /proc/cpuinfo); Halide host target: `%s` (%s f32 lanes; %s)" % (
            ISAS[isa]["name"], meta["halide_host_target"], meta["halide_host_lanes"],
            meta["halide_host_target_source"]),
    ]
    for i in meta["peak_isas"]:
        lines.append("- measured FP32 FMA peak, %s (bench/peak.c, %s per thread; best of start and end), "
                     "GFLOP/s: %s (start: %s; end: %s)" % (ISAS[i]["name"], ISAS[i]["kernel"],
                                               fmt_peaks(meta["peak_gflops"], i),
                                               fmt_peaks(meta["peak_gflops_start"], i),
                                               fmt_peaks(meta.get("peak_gflops_end", {}), i)))
    lines += [
        "- Kiln builds: %s" % "; ".join(
            "%s (%s), against the %s peak" % (
                b["label"], "`kilnc build --target=%s`" % b["target"] if b["target"]
                else "`kilnc build`, default `--target=host`", ISAS[b["isa"]]["name"]) for b in builds.values()),
        "- torch %s (%s); ATen backend: %s" % (
            t["torch_version"], PYTHON,
            "OpenMP" if "OpenMP" in t["parallel_info"] else "see JSON"),
        "- BLAS: libblas.so.3 → %s; loaded: %s" % (meta["blas_alternative"], ", ".join(t["blas_realpaths"])),
        "- OpenBLAS kernels: as-is env → %s; `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` → %s" % (
            cores["asis"], cores["avx512"]),
        "- environment as it is: %s" % ", ".join("%s=%s" % (k, envs.get(k) if envs.get(k) is not None else "(unset)")
                                                for k in OPENBLAS_VARS + ("OMP_NUM_THREADS",)),
        "- Kiln: %s (build %s); each Kiln executable built in %s s (median)" % (
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
        "sample from `kilnc check` × batch / time) over the measured peak, at that thread count, of the ISA "
        "the build targets. RSS: peak resident set of the measuring process (PyTorch's includes the torch "
        "import). targets: each target of the inference issue that applies to the row, against PyTorch "
        "eager as it is at the same thread count (✓ met, ✗ missed with the value, ? not measured).",
    ]
    return "\n".join(lines)


def make_builds(isa, host_target):
    builds = {"native": {"id": "native", "label": "native build", "target": None, "isa": isa,
                         "halide_target": host_target}}
    if isa == "avx512":
        builds["avx2"] = {"id": "avx2", "label": "AVX2 build", "target": AVX2_TARGET, "isa": "avx2",
                          "halide_target": AVX2_TARGET}
    return builds


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
        "kilnc": os.path.relpath(kilnc, ROOT) if kilnc.startswith(ROOT + os.sep) else kilnc,
        "kilnc_mtime": datetime.datetime.fromtimestamp(os.path.getmtime(kilnc)).strftime("%Y-%m-%d %H:%M"),
        "processes": processes, "seconds": args.seconds,
        "models": models, "batches": batches, "threads": threads,
        "command": os.environ.get("KILN_BENCH_COMMAND") or " ".join(shlex.quote(a) for a in sys.argv),
    }
    try:
        meta["git_head"] = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
    except (BenchError, OSError):
        meta["git_head"] = None

    flags = cpu_flags()
    isa = cpu_isa(flags)
    if isa is None:
        raise SystemExit("bench: this CPU has neither AVX-512F nor AVX2 with FMA (/proc/cpuinfo flags); "
                         "bench/peak.c has no kernel for it")
    host_target, host_lanes, host_how = halide_host_target(work, flags)
    builds = make_builds(isa, host_target)
    peak_isas = list(dict.fromkeys(b["isa"] for b in builds.values()))
    meta.update({"isa": isa, "halide_host_target": host_target, "halide_host_lanes": host_lanes,
                 "halide_host_target_source": host_how, "builds": builds, "peak_isas": peak_isas})
    log("bench: ISA %s; Halide host target %s (%s)" % (ISAS[isa]["name"], host_target, host_how))

    log("bench: measuring the FMA peak (%s) ..." % ", ".join(ISAS[i]["name"] for i in peak_isas))
    peak_exe = build_peak(work)
    meta["peak_gflops_start"] = measure_peak(peak_exe, peak_isas, sorted(set(threads)))
    meta["peak_gflops"] = {i: dict(v) for i, v in meta["peak_gflops_start"].items()}
    log("bench: peak %s GFLOP/s" % meta["peak_gflops"])

    exes, flops, build_times, errors = {}, {}, [], []
    for m in models:
        exes[m] = {}
        try:
            flops[m] = kiln_flops(kilnc, m)
        except BenchError as e:
            errors.append("%s: %s" % (m, e))
        for b in builds.values():
            try:
                exes[m][b["id"]], dt = kiln_build(kilnc, m, work, b)
                build_times.append(dt)
            except BenchError as e:
                errors.append("%s (%s): %s" % (m, b["label"], e))
                exes[m][b["id"]] = None
                log("bench: Kiln %s of %s failed; PyTorch columns only\n%s" % (b["label"], m, e))
    meta["build_seconds"] = "%.1f" % median(build_times) if build_times else "—"

    records = []
    total = len(models) * len(batches) * len(threads)
    t_start = time.time()
    for m in models:
        for bt in batches:
            for t in threads:
                log("bench: [%d/%d] %s batch %d threads %d ..." % (len(records) + 1, total, m, bt, t))
                rec = bench_config(exes[m], m, bt, t, processes, args.seconds)
                derive(rec, flops.get(m), meta["peak_gflops"], builds)
                records.append(rec)
                log("bench:   %s; eager %s µs, frozen %s µs" % (
                    "; ".join("Kiln %s %s µs (eager/Kiln %s)" % (b, fmt_us(k["us"]), fmt_x(k["asis_eager_ratio"]))
                              for b, k in rec["kiln"].items()),
                    fmt_us(rec["asis_eager_us"]), fmt_us(rec["asis_frozen_us"])))
                errors += ["%s b%d %dT: %s" % (m, bt, t, e) for e in rec["errors"]]
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[0]
    # The peak again at the end: a busy machine lowers it, so keep the best of the two
    # and recompute % of peak with it.
    meta["peak_gflops_end"] = measure_peak(peak_exe, peak_isas, sorted(set(threads)))
    meta["peak_gflops"] = {i: {t: max(v, meta["peak_gflops_end"].get(i, {}).get(t, 0.0)) for t, v in p.items()}
                           for i, p in meta["peak_gflops_start"].items()}
    for rec in records:
        derive(rec, flops.get(rec["model"]), meta["peak_gflops"], builds)
    meta["wall_seconds"] = round(time.time() - t_start, 1)
    meta["flops_per_sample"] = flops

    sections = [header(meta, builds)]
    for b in builds.values():
        target = "`--target=%s`" % b["target"] if b["target"] else "`--target=host`: `%s`" % b["halide_target"]
        name = ISAS[b["isa"]]["name"]
        sections += [
            "## Kiln %s (%s), against the %s peak" % (b["label"], target, name),
            table(records, b["id"], name),
            "### Targets, %s (from the inference issue)\n\n%s" % (b["label"], targets(records, b["id"])),
        ]
    report = "\n\n".join(sections)
    noisy = spread(records, builds)
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
