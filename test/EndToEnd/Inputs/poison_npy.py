"""poison_npy.py IN.npy OUT.npy ROW: a copy of a float32 NPY file whose row
ROW (of the leading dimension, flattened with the next ones as the trainer
does: the header's shape is kept) starts with a NaN. Standard library only."""

import struct
import sys

source, target, row = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(source, "rb").read())
assert data[:6] == b"\x93NUMPY" and data[6] == 1
(header_size,) = struct.unpack("<H", data[8:10])
header = data[10:10 + header_size].decode()
assert "'<f4'" in header
shape = eval(header[header.index("(") : header.index(")") + 1])
offset = 10 + header_size
count = 1
for extent in shape:
    count *= extent
# Rows are the samples: the model's sample is the last three dimensions.
sample = shape[-1] * shape[-2] * shape[-3]
struct.pack_into("<f", data, offset + 4 * row * sample, float("nan"))
open(target, "wb").write(bytes(data))
