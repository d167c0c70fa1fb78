"""Writes an NPY v1.0 file of int64 ('<i8') values, with the standard library
only (CI has no numpy): write_labels.py OUT.npy V1 V2 ... (a 1-d array)."""
import struct
import sys


def main():
    path, values = sys.argv[1], [int(v) for v in sys.argv[2:]]
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }" % len(values)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as out:
        out.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        out.write(struct.pack("<%dq" % len(values), *values))


if __name__ == "__main__":
    main()
