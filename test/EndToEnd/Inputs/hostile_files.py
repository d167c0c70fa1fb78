"""Writes the hostile input files of the runner's tests (no numpy).

usage: hostile_files.py KIND OUT ARGS...
  npy OUT DESCR SHAPE           an NPY 1.0 header, no data ('<f4', '(3, 784)');
                                DESCR may hold Python escapes ('<f4\\x1b[2J')
  idx OUT DIM,DIM,... [VALUE,...|-]  a plain IDX file of unsigned bytes:
                                the header, then VALUEs (or zeros, as many as
                                the dimensions need, if no VALUE is given;
                                nothing for "-")
  gzip IN OUT [cut=N] [crc] [length]
                                IN compressed, then the last N bytes cut
                                off, or the CRC-32 or length trailer damaged
  bomb OUT COUNT MIB            a gzip IDX file whose header says COUNT
                                labels, followed by MIB MiB of zeros
  safetensors OUT NAME SHAPE BEGIN END
                                a header of one F32 tensor, no data
  extra-tensor IN OUT NAME      IN with one more F32 tensor of one element,
                                called NAME (Python escapes allowed)
"""
import gzip
import json
import struct
import sys
import zlib


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape")


def npy(out, descr, shape):
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (unescape(descr), shape)
    header = text.encode("utf-8")
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)


def idx_bytes(dims, values):
    count = 1
    for d in dims:
        count *= d
    data = b"" if values == "-" else bytes(values) if values else bytes(count)
    return bytes([0, 0, 8, len(dims)]) + struct.pack(">%dI" % len(dims), *dims) + data


def idx(out, dims, values=""):
    dims = [int(d) for d in dims.split(",")]
    if values != "-":
        values = [int(v) for v in values.split(",")] if values else []
    with open(out, "wb") as f:
        f.write(idx_bytes(dims, values))


def gzip_file(source, out, *options):
    with open(source, "rb") as f:
        blob = bytearray(gzip.compress(f.read()))
    for option in options:
        if option.startswith("cut="):
            blob = blob[:len(blob) - int(option[4:])]
        elif option == "crc":
            blob[-8] ^= 1  # the CRC-32 is the trailer's first 4 bytes
        elif option == "length":
            blob[-4] ^= 1  # then the length (mod 2^32)
        else:
            sys.exit("hostile_files.py: unknown gzip option %r" % option)
    with open(out, "wb") as f:
        f.write(blob)


def bomb(out, count, mib):
    stream = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    parts = [stream.compress(idx_bytes([int(count)], [1] * int(count)))]
    zeros = bytes(1 << 20)
    for _ in range(int(mib)):
        parts.append(stream.compress(zeros))
    parts.append(stream.flush())
    with open(out, "wb") as f:
        f.write(b"".join(parts))


def safetensors(out, name, shape, begin, end):
    header = json.dumps({name: {"dtype": "F32", "shape": json.loads(shape),
                                "data_offsets": [int(begin), int(end)]}}).encode()
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)


def extra_tensor(source, out, name):
    with open(source, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    data = blob[8 + length:]
    header[unescape(name)] = {"dtype": "F32", "shape": [1],
                              "data_offsets": [len(data), len(data) + 4]}
    text = json.dumps(header).encode()
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data + struct.pack("<f", 1.0))


def main():
    kinds = {"npy": npy, "idx": idx, "gzip": gzip_file, "bomb": bomb,
             "safetensors": safetensors, "extra-tensor": extra_tensor}
    if len(sys.argv) < 3 or sys.argv[1] not in kinds:
        sys.exit(__doc__)
    kinds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
