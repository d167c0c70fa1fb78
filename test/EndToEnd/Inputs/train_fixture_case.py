#!/usr/bin/env python3
"""One case of test/fixtures/train/manifest.json through an ahead-of-time
training program: writes the case's model with a train section holding its
optimizer (torch.optim's settings), builds it with
`kilnc build --mode=train` and the given target options, runs its 10 steps
from the case's initial state over its batches in order, and checks the
printed losses and argmax hits of every step against PyTorch's (the
manifest's rtol and atol) and the final checkpoint with safetensors-compare.
Prints one line per check; exits 1 on the first mismatch.

usage: train_fixture_case.py [--build-only] [--run-with PREFIX] [--threads T]
                             [--hyper-at-run-time] FIXTURES WORK CASE -- KILNC_BUILD_OPTIONS...
(kilnc and safetensors-compare are found on PATH, as lit sets it).
--build-only writes and builds the program, prints its path and stops
(bench/gpu/prepare.sh builds programs for a GPU machine this way).
--run-with runs the program through PREFIX (split at spaces: qemu for a
cross-built program); --threads is passed to the program.
--hyper-at-run-time builds the program with other hyper-parameters in its
train section (the same optimizer, nesterov, and momentum or none) and
gives the case's on the program's command line (--lr, --momentum,
--dampening, --weight-decay, --betas, --eps)."""
import json
import os
import re
import subprocess
import sys


def optimizer_line(opt):
    cls = opt["class"]
    if cls == "torch.optim.SGD":
        return ("sgd(lr=%r, momentum=%r, dampening=%r, weight_decay=%r, nesterov=%s)" %
                (opt["lr"], opt["momentum"], opt["dampening"], opt["weight_decay"],
                 "true" if opt["nesterov"] else "false"))
    name = {"torch.optim.Adam": "adam", "torch.optim.AdamW": "adamw"}[cls]
    b1, b2 = opt["betas"]
    return "%s(lr=%r, betas=(%r, %r), eps=%r, weight_decay=%r)" % (
        name, opt["lr"], b1, b2, opt["eps"], opt["weight_decay"])


def decoy(opt):
    """torch.optim's settings `opt` with every value the program takes at
    run time changed (what fixes the build kept: the class, nesterov, and
    whether SGD has momentum)."""
    other = dict(opt)
    if opt["class"] == "torch.optim.SGD":
        other.update(lr=0.5, momentum=0.5 if opt["momentum"] else 0.0,
                     dampening=0.0 if opt["nesterov"] else 0.25, weight_decay=0.125)
    else:
        other.update(lr=0.5, betas=[0.5, 0.625], eps=0.125, weight_decay=0.25)
    return other


def hyper_flags(opt):
    """The program's flags that give torch.optim's settings `opt`."""
    if opt["class"] == "torch.optim.SGD":
        return ["--lr", repr(opt["lr"]), "--momentum", repr(opt["momentum"]), "--dampening",
                repr(opt["dampening"]), "--weight-decay", repr(opt["weight_decay"])]
    b1, b2 = opt["betas"]
    return ["--lr", repr(opt["lr"]), "--betas", "%r,%r" % (b1, b2), "--eps", repr(opt["eps"]),
            "--weight-decay", repr(opt["weight_decay"])]


def without_train_section(source):
    """The model's source without its train { ... } block, if any."""
    match = re.search(r"^\s*train\s*\{", source, re.M)
    if not match:
        return source
    depth, end = 0, match.end() - 1
    for end in range(match.end() - 1, len(source)):
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        if depth == 0:
            break
    return source[:match.start()] + source[end + 1:]


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("FAILED (%d): %s\n%s%s" % (result.returncode, " ".join(command), result.stdout,
                                             result.stderr))
    return result.stdout


def main():
    args = sys.argv[1:]
    build_only, prefix, threads, at_run_time = False, [], [], False
    while args and args[0].startswith("--") and args[0] != "--":
        flag = args.pop(0)
        if flag == "--build-only":
            build_only = True
        elif flag == "--run-with":
            prefix = args.pop(0).split()
        elif flag == "--threads":
            threads = ["--threads", args.pop(0)]
        elif flag == "--hyper-at-run-time":
            at_run_time = True
        else:
            sys.exit("train_fixture_case.py: unknown option " + flag)
    split = args.index("--")
    fixtures, work, name = args[:split]
    build_options = args[split + 1:]
    manifest = json.load(open(os.path.join(fixtures, "train", "manifest.json")))
    case = next(c for c in manifest["cases"] if c["name"] == name)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fixtures)))
    source = without_train_section(open(os.path.join(root, case["kiln"])).read()).rstrip()
    assert source.endswith("}"), case["kiln"]
    built = decoy(case["optimizer"]) if at_run_time else case["optimizer"]
    section = "  train {\n    loss = cross_entropy\n    optimizer = %s\n  }\n" % optimizer_line(
        built)
    given = hyper_flags(case["optimizer"]) if at_run_time else []
    os.makedirs(work, exist_ok=True)
    stem = os.path.join(work, re.sub(r"\W", "_", name))
    with open(stem + ".kiln", "w") as f:
        f.write(source[:-1] + section + "}\n")
    run(["kilnc", "build", stem + ".kiln", "--mode=train", "-o", stem] + build_options)
    if build_only:
        print(stem)
        return
    files = {k: os.path.join(fixtures, "train", v) for k, v in case["files"].items()}
    batch = case["batch_size"]
    out = run(prefix + [stem, "--init", files["initial"], "--inputs", files["inputs"], "--labels",
               files["labels"], "--steps", "10", "--batch", str(batch), "--no-shuffle",
               "-o", stem + ".safetensors"] + threads + given)
    want = json.load(open(files["losses"]))
    rtol, atol = case["tolerance"]["rtol"], case["tolerance"]["atol"]
    steps = re.findall(r"step (\d+)/10: loss ([-+0-9.einfa]+), correct (\d+)/(\d+)", out)
    if len(steps) != 10:
        sys.exit("%s: expected 10 steps printed, got:\n%s" % (name, out))
    for (step, loss, correct, _), want_loss, want_correct in zip(steps, want["loss"],
                                                                  want["correct"]):
        # Printed to 6 decimals: half a unit of the last one on top.
        if abs(float(loss) - want_loss) > atol + rtol * abs(want_loss) + 5e-7 or \
                int(correct) != want_correct:
            sys.exit("%s: step %s: loss %s, correct %s; PyTorch %r, %d" %
                     (name, step, loss, correct, want_loss, want_correct))
    print("%s: 10 losses and hits match" % name)
    print(run(["safetensors-compare", stem + ".safetensors", files["after_10"], "--rtol",
               str(rtol), "--atol", str(atol)]).splitlines()[-1])


if __name__ == "__main__":
    main()
