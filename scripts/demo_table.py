#!/usr/bin/python3
"""Training runs side by side, one row per epoch, from kilnc train's metrics CSVs.

    scripts/demo_table.py LABEL=A.csv LABEL=B.csv ...

Each run gets its columns: train loss and accuracy, validation loss and
accuracy where the run had a validation split, and the epoch's seconds (its
training part, docs/metrics.md). Standard library only: make demo runs it
with Debian's /usr/bin/python3, where numpy may be missing.
"""
import csv
import sys


def read_run(path):
    with open(path, newline="") as f:
        return {int(row["epoch"]): row for row in csv.DictReader(f)}


def number(row, key, percent=False):
    text = row.get(key, "") if row else ""
    if text == "":
        return ""
    value = float(text)
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def main(argv):
    if len(argv) < 2 or any("=" not in arg for arg in argv[1:]):
        sys.exit("usage: demo_table.py LABEL=METRICS.csv ...")
    runs = []
    for arg in argv[1:]:
        label, path = arg.split("=", 1)
        rows = read_run(path)
        has_val = any(row.get("val_loss", "") != "" for row in rows.values())
        columns = [("train loss", "train_loss", False), ("train acc", "train_accuracy", True)]
        if has_val:
            columns += [("val loss", "val_loss", False), ("val acc", "val_accuracy", True)]
        columns.append(("s", "seconds", False))
        runs.append((label, rows, columns))

    width = 10
    def cell(text, w=width):
        return text.rjust(w)
    groups = [len(columns) * (width + 1) - 1 for _, _, columns in runs]
    print("epoch  " + " | ".join(label.center(w)[:w] for (label, _, _), w in zip(runs, groups)))
    print("       " + " | ".join(" ".join(cell(name) for name, _, _ in columns)
                                 for _, _, columns in runs))
    epochs = sorted(set().union(*(rows.keys() for _, rows, _ in runs)))
    for epoch in epochs:
        parts = []
        for _, rows, columns in runs:
            row = rows.get(epoch)
            values = []
            for _, key, percent in columns:
                text = number(row, key, percent)
                if key == "seconds" and text:
                    text = f"{float(row[key]):.2f}"
                values.append(cell(text))
            parts.append(" ".join(values))
        print(f"{epoch:5d}  " + " | ".join(parts))


if __name__ == "__main__":
    main(sys.argv)
