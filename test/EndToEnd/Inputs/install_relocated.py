"""Checks that an install of Kiln is relocatable and self-contained.

usage: install_relocated.py --source SRC --build BUILD --models DIR --fixtures DIR
                            [--embed DIR] [--arm-runner "qemu-aarch64-static ..."]

Installs BUILD to a temporary prefix outside both trees (cmake --install),
moves the prefix elsewhere, copies a model, its weights and fixtures next to
it, and from the moved copy alone, each step under
`strace -f -e trace=open,openat,execve`:
  1. builds the model to an executable with the moved kilnc and runs it on a
     fixture (outputs within 1e-4 of PyTorch's, as npy-compare checks);
  2. configures and builds a find_package(Kiln) project like examples/embed
     (kiln_add_model) and runs its program;
  3. with --arm-runner and an aarch64 runtime in the prefix, builds the model
     for arm-64-linux and runs it under that command.
Then it fails if any traced process opened or executed anything under SRC or
BUILD (a path compiled in, a fallback to the build tree), listing the lines.
Prints one line per step; the temporary directory is removed on success.
"""
import argparse
import ast
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile


def read_npy(path):
    """float32 little-endian C-order NPY (version 1 or 2) -> (shape, values)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s: not an NPY file" % path)
    if data[6] == 1:
        length, start = struct.unpack("<H", data[8:10])[0], 10
    else:
        length, start = struct.unpack("<I", data[8:12])[0], 12
    header = ast.literal_eval(data[start:start + length].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError("%s: expected little-endian float32 in C order" % path)
    shape = tuple(header["shape"])
    count = 1
    for extent in shape:
        count *= extent
    body = start + length
    return shape, struct.unpack("<%df" % count, data[body:body + 4 * count])


def compare(actual, expected, tolerance=1e-4):
    """npy-compare's rule: |a - e| <= 1e-4 and |a - e| / max(1, |e|) <= 1e-4."""
    shape_a, a = read_npy(actual)
    shape_e, e = read_npy(expected)
    if shape_a != shape_e:
        return False, "shape %s, expected %s" % (shape_a, shape_e)
    worst = max((abs(x - y) for x, y in zip(a, e)), default=0.0)
    worst_rel = max((abs(x - y) / max(1.0, abs(y)) for x, y in zip(a, e)), default=0.0)
    ok = worst <= tolerance and worst_rel <= tolerance
    return ok, "max abs error %.3g, max rel error %.3g" % (worst, worst_rel)


class Tracer:
    """Runs commands under strace, one log per command."""

    def __init__(self, directory, env):
        self.directory = directory
        self.env = env
        self.logs = []

    def run(self, name, argv, cwd, stdout=None):
        log = os.path.join(self.directory, "strace-%02d-%s.log" % (len(self.logs), name))
        self.logs.append(log)
        command = ["strace", "-f", "-qq", "-s", "4096", "-e", "trace=open,openat,execve",
                   "-o", log] + argv
        result = subprocess.run(command, cwd=cwd, env=self.env, stdout=stdout or subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            sys.stdout.write(result.stdout or "")
            raise SystemExit("FAIL: %s exited with %d: %s" % (name, result.returncode, " ".join(argv)))
        return result.stdout


QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def forbidden_lines(logs, roots):
    """strace lines of open/openat/execve whose path arguments lie under a root."""
    found = []
    for log in logs:
        with open(log, errors="replace") as f:
            for line in f:
                if not re.search(r"\b(open|openat|execve)\(", line):
                    continue
                for path in QUOTED.findall(line):
                    if any(path == root or path.startswith(root + "/") for root in roots):
                        found.append("%s: %s" % (os.path.basename(log), line.rstrip()))
                        break
    return found


def clean_environment(roots):
    """The environment without anything that points into the trees (lit puts
    the build's bin/ on PATH)."""
    env = {}
    for key, value in os.environ.items():
        if key == "PATH":
            value = os.pathsep.join(
                p for p in value.split(os.pathsep)
                if p and not any(os.path.realpath(p).startswith(r) for r in roots))
        elif any(r in value for r in roots):
            continue
        env[key] = value
    return env


EMBED_CMAKE = """cmake_minimum_required(VERSION 3.20)
project(kiln_installed_embed C)
find_package(Kiln REQUIRED)
find_package(ZLIB REQUIRED)
kiln_add_model(TARGET fashion
               MODEL ${CMAKE_CURRENT_SOURCE_DIR}/mlp_bn.kiln
               WEIGHTS ${CMAKE_CURRENT_SOURCE_DIR}/weights.safetensors)
add_executable(classify classify.c)
target_link_libraries(classify PRIVATE fashion ZLIB::ZLIB)
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--embed", required=True)
    parser.add_argument("--arm-runner", default="")
    args = parser.parse_args()
    roots = sorted({os.path.realpath(args.source), os.path.realpath(args.build),
                    os.path.abspath(args.source), os.path.abspath(args.build)})

    tmp = os.path.realpath(tempfile.mkdtemp(prefix="kiln-install-test-"))
    if any(tmp.startswith(root + "/") for root in roots):
        raise SystemExit("FAIL: the temporary directory %s is inside a tree" % tmp)
    stage, prefix = os.path.join(tmp, "stage"), os.path.join(tmp, "moved", "kiln")
    work = os.path.join(tmp, "work")

    # The one step that reads the build tree: the install itself.
    install = subprocess.run(["cmake", "--install", args.build, "--prefix", stage],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if install.returncode != 0:
        sys.stdout.write(install.stdout)
        raise SystemExit("FAIL: cmake --install")
    os.makedirs(os.path.dirname(prefix))
    os.rename(stage, prefix)
    print("installed and moved to <tmp>/moved/kiln")

    os.makedirs(os.path.join(work, "embed"))
    fixture = os.path.join(args.fixtures, "mlp_bn")
    for name, source in [("mlp_bn.kiln", os.path.join(args.models, "mlp_bn.kiln")),
                         ("weights.safetensors", os.path.join(fixture, "weights.safetensors")),
                         ("input_b64.npy", os.path.join(fixture, "input_b64.npy")),
                         ("output_b64.npy", os.path.join(fixture, "output_b64.npy"))]:
        shutil.copy(source, os.path.join(work, name))
    for name in ["mlp_bn.kiln", "weights.safetensors"]:
        shutil.copy(os.path.join(work, name), os.path.join(work, "embed", name))
    shutil.copy(os.path.join(args.embed, "classify.c"), os.path.join(work, "embed", "classify.c"))
    with open(os.path.join(work, "embed", "CMakeLists.txt"), "w") as f:
        f.write(EMBED_CMAKE)

    tracer = Tracer(tmp, clean_environment(roots))
    kilnc = os.path.join(prefix, "bin", "kilnc")

    # 1. An executable from the moved kilnc, run on the fixture.
    tracer.run("kilnc-exe", [kilnc, "build", "mlp_bn.kiln", "--weights", "weights.safetensors",
                             "-o", "mlp_bn"], cwd=work)
    tracer.run("run-exe", ["./mlp_bn", "--input", "input_b64.npy", "--output", "y64.npy"], cwd=work)
    ok, text = compare(os.path.join(work, "y64.npy"), os.path.join(work, "output_b64.npy"))
    print("native executable, batch 64: %s (%s)" % ("match" if ok else "MISMATCH", text))
    if not ok:
        raise SystemExit("FAIL: outputs differ from PyTorch's")

    # 2. A find_package(Kiln) project, found through the moved prefix.
    embed, embed_build = os.path.join(work, "embed"), os.path.join(work, "embed-build")
    # The user package registry (~/.cmake/packages) is the developer's, not
    # Kiln's: only the prefix given here may provide Kiln.
    tracer.run("cmake-configure", ["cmake", "-S", embed, "-B", embed_build, "-G", "Ninja",
                                   "-DCMAKE_PREFIX_PATH=" + prefix,
                                   "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"], cwd=work)
    tracer.run("cmake-build", ["cmake", "--build", embed_build], cwd=work)
    images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
    output = tracer.run("run-classify", [os.path.join(embed_build, "classify"), images, labels, "64"],
                        cwd=work)
    summary = [line for line in output.splitlines() if line.startswith("classified")]
    if not summary or not summary[0].startswith("classified 64 images"):
        sys.stdout.write(output)
        raise SystemExit("FAIL: classify printed no summary")
    print("find_package(Kiln) project: %s" % re.sub(r"\d+ correct", "N correct", summary[0]))

    # 3. Cross-compiled for ARM from the moved copy, where it has that runtime.
    arm_runtime = os.path.join(prefix, "lib", "kiln", "aarch64-linux-gnu", "libkiln_runtime_model.a")
    if (args.arm_runner and os.path.exists(arm_runtime)
            and shutil.which(args.arm_runner.split()[0], path=tracer.env["PATH"])
            and shutil.which("aarch64-linux-gnu-gcc", path=tracer.env["PATH"])):
        tracer.run("kilnc-arm", [kilnc, "build", "mlp_bn.kiln", "--weights", "weights.safetensors",
                                 "--target=arm-64-linux", "-o", "mlp_bn_arm"], cwd=work)
        tracer.run("run-arm", args.arm_runner.split() + ["./mlp_bn_arm", "--input", "input_b64.npy",
                                                         "--output", "arm64.npy"], cwd=work)
        ok, text = compare(os.path.join(work, "arm64.npy"), os.path.join(work, "output_b64.npy"))
        print("arm-64-linux executable, batch 64: %s (%s)" % ("match" if ok else "MISMATCH", text))
        if not ok:
            raise SystemExit("FAIL: ARM outputs differ from PyTorch's")
    else:
        print("arm-64-linux executable: skipped (no aarch64 runtime, cross compiler or qemu)")

    found = forbidden_lines(tracer.logs, roots)
    if found:
        print("FAIL: %d accesses under the source or build tree:" % len(found))
        for line in found[:40]:
            print("  " + line)
        print("logs kept in %s" % tmp)
        return 1
    opened = sum(1 for log in tracer.logs for line in open(log, errors="replace")
                 if re.search(r"\b(open|openat|execve)\(", line))
    print("traced %d opens and execs in %d commands: none under the source or build tree"
          % (opened, len(tracer.logs)))
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
