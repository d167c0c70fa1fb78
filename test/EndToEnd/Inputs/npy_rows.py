"""Rewrites an NPY v1.0 file with its leading dimensions merged into one, so
that it has RANK dimensions (the data are unchanged: C order), with the
standard library only (CI has no numpy): npy_rows.py IN.npy OUT.npy RANK.
The training fixtures store [batches, batch, ...]; a runner's --input wants
[rows, ...]."""
import ast
import struct
import sys


def main():
    source, target, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(source, "rb").read()
    assert data[:8] == b"\x93NUMPY\x01\x00", "not an NPY v1.0 file"
    length = struct.unpack("<H", data[8:10])[0]
    header = ast.literal_eval(data[10:10 + length].decode())
    shape = header["shape"]
    merged = 1
    for extent in shape[:len(shape) - rank + 1]:
        merged *= extent
    header["shape"] = (merged,) + tuple(shape[len(shape) - rank + 1:])
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (header["descr"], header["shape"])
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    with open(target, "wb") as out:
        out.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode())
        out.write(data[10 + length:])


if __name__ == "__main__":
    main()
