"""Starts a training command, waits until its checkpoint says the run is
past its first steps and not finished, then sends it a signal:

    interrupt_training.py SIGNAL CHECKPOINT -- COMMAND...
    interrupt_training.py --metadata CHECKPOINT   (prints "steps N", then
                                                   every "key: value")

SIGNAL is KILL or INT. Exits 0 if the command ended by that signal (KILL)
or with exit code 130 after writing a checkpoint (INT), and the checkpoint
then records a position inside an epoch (kiln.batch > 0) of an unfinished
run; otherwise 1 with what happened. The checkpoint's metadata are read
from its safetensors header (an 8-byte little-endian length, then JSON), so
no third-party module is needed."""

import json
import os
import signal
import struct
import subprocess
import sys
import time


def metadata(path):
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            return json.loads(f.read(size)).get("__metadata__", {})
    except (OSError, ValueError, struct.error):
        return None


def main():
    if sys.argv[1] == "--metadata":  # interrupt_training.py --metadata CHECKPOINT
        meta = metadata(sys.argv[2]) or {}
        print("steps %s" % meta.get("steps"))
        for key in sorted(meta):
            print("%s: %s" % (key, meta[key]))
        return
    which, checkpoint, separator, *command = sys.argv[1:]
    assert separator == "--"
    sig = {"KILL": signal.SIGKILL, "INT": signal.SIGINT}[which]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while process.poll() is None and time.time() < deadline:
        meta = metadata(checkpoint)
        if meta and int(meta.get("kiln.batch", "0")) > 0:
            process.send_signal(sig)
            break
        time.sleep(0.002)
    output = process.communicate()[0].decode(errors="replace")
    code = process.returncode
    expected = -signal.SIGKILL if which == "KILL" else 130
    if code != expected:
        sys.exit("interrupt_training: the command ended with %s, not %s (it must still run "
                 "when its first checkpoint appears):\n%s" % (code, expected, output))
    meta = metadata(checkpoint)
    if not meta or meta.get("kiln.stopped") or int(meta.get("kiln.batch", "0")) == 0:
        sys.exit("interrupt_training: the checkpoint is not inside an epoch: %s" % meta)
    sys.stdout.write(output)
    print("interrupted at step %s (epoch %d, batch %s)" %
          (meta["steps"], int(meta["kiln.epoch"]) + 1, meta["kiln.batch"]))


main()
