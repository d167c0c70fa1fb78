"""Writes the first N items of a gzip-compressed IDX file (images or labels)
as a new gzip-compressed IDX file, so that a test can read a real
Fashion-MNIST file quickly (under qemu, say).

usage: idx_head.py IN.gz OUT.gz N
"""
import gzip
import struct
import sys


def main():
    source, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with gzip.open(source, "rb") as f:
        data = f.read()
    # Magic 0x0000 TT DD: type code and number of dimensions; then one
    # big-endian uint32 extent per dimension; then the items, unsigned bytes.
    dims = data[3]
    extents = list(struct.unpack(">%dI" % dims, data[4:4 + 4 * dims]))
    item = 1
    for extent in extents[1:]:
        item *= extent
    count = min(count, extents[0])
    extents[0] = count
    body = 4 + 4 * dims
    with gzip.open(out, "wb") as f:
        f.write(data[:4] + struct.pack(">%dI" % dims, *extents))
        f.write(data[body:body + count * item])


if __name__ == "__main__":
    main()
