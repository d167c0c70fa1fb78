#!/usr/bin/env python3
"""Writes the PTX modules a CUDA build embeds (Halide keeps each as a
NUL-terminated string holding a `.version` directive) to OUT_DIR/ptx_N.ptx,
and prints how many it found; exits 1 if none."""
import os
import sys


def ptx_modules(data):
    start = 0
    while True:
        at = data.find(b".version ", start)
        if at < 0:
            return
        begin = data.rfind(b"\0", 0, at) + 1
        end = data.find(b"\0", at)
        if end < 0:
            end = len(data)
        text = data[begin:end]
        if b".target" in text and b".entry" in text:
            yield text
        start = end


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract_ptx.py OBJECT OUT_DIR")
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    os.makedirs(sys.argv[2], exist_ok=True)
    count = 0
    for count, text in enumerate(ptx_modules(data), 1):
        with open(os.path.join(sys.argv[2], "ptx_%d.ptx" % count), "wb") as out:
            out.write(text + b"\n")
    print("PTX modules: %d" % count)
    sys.exit(0 if count else 1)


if __name__ == "__main__":
    main()
