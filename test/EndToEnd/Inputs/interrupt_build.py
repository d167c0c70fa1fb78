"""Interrupts a `kilnc build` and says what it left behind.

  interrupt_build.py SIGNAL WHEN DIR -- KILNC_BUILD_COMMAND...

Starts the command (whose -o is in DIR and whose --cc is stall-cc.sh, so
that the build cannot finish first) and sends it SIGNAL (TERM, INT) once
WHEN holds: `workdir`, a DIR/.kiln-build-* directory exists; `tool`, the C
compiler runs ($KILN_CC_PIDFILE exists). Then prints how kilnc ended, how
many work directories are left, whether the C compiler still runs, and the
files in DIR. Every wait is bounded (20 s); the C compiler is killed at the
end if it still runs.
"""
import glob
import os
import signal
import subprocess
import sys
import time


def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def default_signals():
    # The test may run where SIGINT is ignored (an ignored signal stays
    # ignored across exec, and kilnc keeps it so): kilnc gets the defaults.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def tool_pid(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main():
    name, when, directory, dashes, *command = sys.argv[1:]
    assert dashes == "--" and command and when in ("workdir", "tool"), __doc__
    number = getattr(signal, "SIG" + name)
    pidfile = os.environ["KILN_CC_PIDFILE"]
    work = os.path.join(directory, ".kiln-build-*")
    build = subprocess.Popen(command, preexec_fn=default_signals)
    ready = (lambda: glob.glob(work)) if when == "workdir" else (lambda: tool_pid(pidfile))
    if not wait_for(lambda: ready() or build.poll() is not None):
        print("kilnc: never got there")
    elif build.poll() is not None:
        print(f"kilnc: ended before the signal (exit {build.returncode})")
    else:
        build.send_signal(number)
    try:
        rc = build.wait(20)
        print(f"kilnc: killed by {signal.Signals(-rc).name}" if rc < 0 else f"kilnc: exit {rc}")
    except subprocess.TimeoutExpired:
        build.kill()
        build.wait()
        print("kilnc: did not end within 20 s")
    print(f"work directories left: {len(glob.glob(work))}")
    pid = tool_pid(pidfile)
    if pid:
        # Stopped and reaped by kilnc, or an orphan that still sleeps.
        stopped = wait_for(lambda: not running(pid), 2.0)
        print("C compiler: " + ("stopped" if stopped else "still running"))
        if not stopped:
            os.kill(pid, signal.SIGKILL)
        os.remove(pidfile)
    print("files: " + " ".join(sorted(os.listdir(directory))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
