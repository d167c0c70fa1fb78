"""Copies a safetensors file with one float32 element replaced (no numpy).

usage: poison_weights.py IN.safetensors OUT.safetensors KEY INDEX VALUE
VALUE is a float as Python reads it: nan, inf, -inf, -1e-6, ...
"""
import json
import struct
import sys


def main():
    source, out, key, index, value = sys.argv[1:6]
    with open(source, "rb") as f:
        blob = bytearray(f.read())
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    entry = header[key]
    if entry["dtype"] != "F32":
        sys.exit("poison_weights.py: %s is %s, not F32" % (key, entry["dtype"]))
    at = 8 + length + entry["data_offsets"][0] + 4 * int(index)
    blob[at:at + 4] = struct.pack("<f", float(value))
    with open(out, "wb") as f:
        f.write(blob)


if __name__ == "__main__":
    main()
