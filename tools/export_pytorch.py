#!/usr/bin/python3
"""Export a PyTorch state_dict to a safetensors file that Kiln can load.

    /usr/bin/python3 tools/export_pytorch.py model.pt -o weights.safetensors

The input is anything torch.save wrote that holds a state_dict:
  * a state_dict (a mapping of names to tensors), e.g. torch.save(m.state_dict(), p)
  * a whole nn.Module, e.g. torch.save(m, p) (its class must be importable:
    run from a directory, or with a PYTHONPATH, where its module is found)
  * a checkpoint dict with a 'state_dict' or 'model_state_dict' entry
    (holding a state_dict or a module)

Every tensor is made a contiguous CPU tensor. Floating-point tensors are
written as F32 (unless --keep-dtype), int64 as I64, other integer and bool
tensors keep their type. Keys are written exactly as in the state_dict.
Loading a file unpickles it, as torch.load does: use it only on files you
trust, or pass --weights-only. The output is written atomically
(temporary file in the same directory, fsync, rename). Needs PyTorch (Debian's /usr/bin/python3 has it).
Exit status: 0 on success, 1 on any error (message on stderr).
"""

import argparse
import collections.abc
import os
import sys

# The one safetensors writer/reader of the repo's Python (beside this file).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

PROG = "export_pytorch"


class ExportError(Exception):
    pass


def _torch():
    try:
        import torch
    except ImportError:
        raise ExportError("PyTorch is not importable by %s; run this tool with "
                          "/usr/bin/python3 (Debian's python3-torch)" % sys.executable)
    return torch


def load_object(path, weights_only):
    torch = _torch()
    if not os.path.exists(path):
        raise ExportError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ExportError("%s: is a directory, not a file saved with torch.save" % path)
    kwargs = {"map_location": "cpu"}
    if weights_only:
        kwargs["weights_only"] = True
    try:
        return torch.load(path, **kwargs)
    except Exception as e:  # noqa: BLE001 - torch.load raises many kinds
        msg = "%s: cannot be loaded with torch.load: %s: %s" % (
            path, type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
        if isinstance(e, (ModuleNotFoundError, AttributeError)) and not weights_only:
            msg += ("\n(the file holds pickled objects whose classes must be importable, e.g. "
                    "a whole saved module: run from, or add to PYTHONPATH, the directory of "
                    "the code that defines them)")
        if weights_only:
            msg += ("\n(--weights-only refuses anything but tensors and plain containers, "
                    "e.g. a whole saved module)")
        raise ExportError(msg)


def find_state_dict(obj, path):
    """-> (mapping, description of where it was found)."""
    torch = _torch()
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict(), "module %s" % type(obj).__name__
    if isinstance(obj, collections.abc.Mapping):
        for key in ("state_dict", "model_state_dict"):
            if key in obj:
                inner = obj[key]
                if isinstance(inner, torch.nn.Module):
                    return inner.state_dict(), "entry %r (module %s)" % (key, type(inner).__name__)
                if isinstance(inner, collections.abc.Mapping):
                    return inner, "entry %r" % key
                raise ExportError("%s: entry %r is not a state_dict but a %s"
                                  % (path, key, type(inner).__name__))
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, "top-level mapping"
        raise ExportError("%s: no state_dict found: a mapping with keys %s but no "
                          "tensors and no 'state_dict' or 'model_state_dict' entry"
                          % (path, _preview(list(obj.keys()))))
    raise ExportError("%s: no state_dict found: the file holds a %s, not a state_dict, "
                      "a module, or a checkpoint dict" % (path, type(obj).__name__))


def _preview(keys, n=6):
    shown = ", ".join(repr(k) for k in keys[:n])
    return "[" + shown + (", ..." if len(keys) > n else "") + "]"


def convert(state_dict, keep_dtype, skip_non_tensors):
    """-> ordered dict name -> (dtype name, shape, bytes); warnings list."""
    torch = _torch()
    float_names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
                   torch.bfloat16: "BF16"}
    other_names = {torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
                   torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
    out = {}
    warnings = []
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ExportError("state_dict key %r is not a string but a %s"
                              % (key, type(key).__name__))
        if key == "__metadata__" or not key:
            raise ExportError("state_dict key %r cannot be stored in safetensors" % key)
        if not isinstance(value, torch.Tensor):
            if skip_non_tensors:
                warnings.append("skipping %r: not a tensor but a %s" % (key, type(value).__name__))
                continue
            raise ExportError("state_dict entry %r is not a tensor but a %s "
                              "(use --skip-non-tensors to leave such entries out)"
                              % (key, type(value).__name__))
        t = value.detach()
        if t.is_sparse or t.layout != torch.strided:
            raise ExportError("%r: %s tensors are not supported" % (key, t.layout))
        if t.is_quantized:
            raise ExportError("%r: quantized tensors (%s) are not supported" % (key, t.dtype))
        if t.device.type == "meta":
            raise ExportError("%r: a meta tensor has no data" % key)
        t = t.cpu()
        if t.dtype in float_names:
            if not keep_dtype and t.dtype != torch.float32:
                t = t.to(torch.float32)
            dtype = float_names[t.dtype]
        elif t.dtype in other_names:
            dtype = other_names[t.dtype]
        else:
            raise ExportError("%r: dtype %s is not supported" % (key, t.dtype))
        t = t.contiguous()
        if dtype == "BF16":
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        out[key] = (dtype, [int(d) for d in t.shape], data)
    if not out:
        raise ExportError("the state_dict holds no tensors")
    return out, warnings


def write_atomic(path, blob):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ExportError("%s: directory %s does not exist" % (path, directory))
    try:
        safetensors_io.write_atomic(path, blob)
    except OSError as e:
        raise ExportError("%s: cannot write: %s" % (path, e.strerror or e))


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        epilog="Example: /usr/bin/python3 tools/export_pytorch.py model.pt -o weights.safetensors")
    ap.add_argument("input", help="file written by torch.save")
    ap.add_argument("-o", "--output", required=True, help="safetensors file to write")
    ap.add_argument("--keep-dtype", action="store_true",
                    help="keep float64/float16/bfloat16 tensors as they are (default: F32)")
    ap.add_argument("--skip-non-tensors", action="store_true",
                    help="leave out state_dict entries that are not tensors, with a warning "
                         "(default: error)")
    ap.add_argument("--weights-only", action="store_true",
                    help="load with torch.load(weights_only=True): refuses files that would "
                         "run arbitrary pickle code, and so whole saved modules too. Without "
                         "it, loading unpickles like torch.load does: only use on trusted files")
    ap.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                    help="add a string to the file's __metadata__ (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if sys.byteorder != "little":
        print("%s: error: big-endian hosts are not supported" % PROG, file=sys.stderr)
        return 1
    try:
        metadata = {"format": "pt"}
        for item in args.metadata:
            if "=" not in item:
                raise ExportError("--metadata %r: expected KEY=VALUE" % item)
            k, v = item.split("=", 1)
            metadata[k] = v
        obj = load_object(args.input, args.weights_only)
        state_dict, where = find_state_dict(obj, args.input)
        tensors, warnings = convert(state_dict, args.keep_dtype, args.skip_non_tensors)
        for w in warnings:
            print("%s: warning: %s" % (PROG, w), file=sys.stderr)
        blob = safetensors_io.serialize(
            {name: safetensors_io.RawTensor(*entry) for name, entry in tensors.items()},
            metadata)
        write_atomic(args.output, blob)
    except ExportError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 1
    if not args.quiet:
        print("%s: wrote %d tensors (%d bytes) from the %s of %s to %s"
              % (PROG, len(tensors), len(blob), where, args.input, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
