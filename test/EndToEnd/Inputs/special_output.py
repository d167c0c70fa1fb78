"""Runs a command whose output is a special file made here, and says what
became of the file.

  special_output.py fifo PATH -- CMD...     makes a FIFO at PATH and reads it
                                            (into PATH.read) while CMD runs
  special_output.py chardev PATH -- CMD...  makes a character device with
                                            /dev/null's numbers (1, 3) at PATH;
                                            mknod needs root, so elsewhere it
                                            prints why it skipped and exits 0

Prints the command's exit code, then what PATH is afterwards ("a FIFO", "a
character device", "a regular file", ...). Bounded: the command gets 60 s.
"""
import errno
import os
import stat
import subprocess
import sys
import threading


def kind(path):
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "something else"


def read_fifo(path, sink):
    with open(path, "rb") as fifo:  # waits for the writer
        sink.append(fifo.read())


def main():
    what, path, dashes, *command = sys.argv[1:]
    assert dashes == "--" and command, __doc__
    reader = None
    if what == "fifo":
        os.mkfifo(path)
        data = []
        reader = threading.Thread(target=read_fifo, args=(path, data), daemon=True)
        reader.start()
    elif what == "chardev":
        if os.geteuid() != 0:
            print("chardev: skipped: mknod needs root")
            return 0
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        raise SystemExit(__doc__)
    sys.stdout.flush()
    rc = subprocess.run(command, timeout=60).returncode
    if reader is not None:
        if reader.is_alive() and kind(path) == "a FIFO":
            # The command may never have opened the FIFO: open it for
            # writing (the reader waits in open, so this does not block) to
            # end the read. ENXIO: no reader has it open any more, the
            # thread read the command's output and is just ending (seen on
            # a loaded machine).
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as error:
                if error.errno != errno.ENXIO:
                    raise
        if kind(path) == "a FIFO":
            reader.join(10)
        with open(path + ".read", "wb") as out:
            out.write(data[0] if data else b"")
    print(f"{what}: exit {rc}, {os.path.basename(path)} is {kind(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
