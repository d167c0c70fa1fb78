"""Checks that training lowered the loss: loss_fell.py LOG WINDOW RATIO reads
kilnc train's per-step lines ("step i/K: loss X, ...") from LOG and passes
when the mean loss of the last WINDOW steps is below RATIO times that of
the first WINDOW; prints both means either way."""
import re
import sys


def main():
    path, window, ratio = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with open(path) as log:
        losses = [float(m.group(1)) for m in re.finditer(r"^step \d+/\d+: loss (\S+),", log.read(), re.M)]
    if len(losses) < 2 * window:
        print("only %d loss lines in %s; need %d" % (len(losses), path, 2 * window))
        return 1
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    fell = last < ratio * first
    print("mean loss of the first %d steps %.4f, of the last %d %.4f: %s"
          % (window, first, window, last, "fell" if fell else "did not fall below %g of it" % ratio))
    return 0 if fell else 1


if __name__ == "__main__":
    sys.exit(main())
