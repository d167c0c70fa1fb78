"""Writes deterministic pseudo-random weights for a model, for tests that
need a checkpoint of a model PyTorch does not know (no PyTorch, no numpy).

usage: random_weights.py PARAMS.txt OUT.safetensors [SEED]
       random_weights.py --input N,C,H,W OUT.npy [SEED]
PARAMS.txt is `kilnc check --params` output: "key kind dtype [shape]".
Running variances are positive and far from 1, running means far from 0.
--input writes a float32 NPY batch of that shape instead.
"""
import json
import random
import struct
import sys


def write_input(shape_text, out, rng):
    shape = [int(extent) for extent in shape_text.split(",")]
    count = 1
    for extent in shape:
        count *= extent
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join("%d, " % extent for extent in shape))
    header += " " * (-(len(header) + 11) % 64) + "\n"
    values = [rng.uniform(-1.0, 1.0) for _ in range(count)]
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % count, *values))


def main():
    if sys.argv[1] == "--input":
        rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
        write_input(sys.argv[2], sys.argv[3], rng)
        return
    params, out = sys.argv[1], sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    header, data = {}, b""
    for line in open(params):
        if "[" not in line:  # the totals line
            continue
        key, _kind, dtype, shape_text = line.split(" ", 3)
        shape = json.loads(shape_text)
        count = 1
        for extent in shape:
            count *= extent
        if dtype == "i64":
            blob = struct.pack("<%dq" % count, *([7] * count))
            header[key] = {"dtype": "I64", "shape": shape}
        else:
            if key.endswith("running_var"):
                values = [rng.uniform(0.2, 4.0) for _ in range(count)]
            elif key.endswith("running_mean"):
                values = [rng.uniform(-2.0, 2.0) for _ in range(count)]
            else:
                values = [rng.uniform(-1.0, 1.0) for _ in range(count)]
            blob = struct.pack("<%df" % count, *values)
            header[key] = {"dtype": "F32", "shape": shape}
        header[key]["data_offsets"] = [len(data), len(data) + len(blob)]
        data += blob
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
