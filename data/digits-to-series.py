#!/usr/bin/env python3
"""Writes scikit-learn's bundled digits (1,797 gray 8 x 8 images, 10 classes)
as series files for parlstm, in a fixed split: the first 1,347 images train,
the last 450 test. Standard library only: the .npy bytes are written by hand.

    data/digits-to-series.py OUTDIR [--digits PATH/digits.csv.gz]

Without --digits it reads sklearn/datasets/data/digits.csv.gz of the
installed scikit-learn (Debian: python3-sklearn); it exits with status 3
when there is none. In OUTDIR, for SPLIT in TRAIN and TEST:

  digits_SPLIT.npy         values (N, 8, 8) float32: step t = image row t,
                           feature d = column d (pixel t * 8 + d)
  digits_SPLIT_labels.npy  labels (N,) int64, the digit 0..9
  digits_SPLIT.tsv         UCR: label, then the 64 pixels in row-major order
                           (univariate: T = 64, D = 1)
  digits_SPLIT.ts          UEA: 8 dimensions of 8 steps: dimension d is
                           column d, its step t is row t (pixel t * 8 + d)

so the .npy and the .ts read to the same (T, D) = (8, 8) values, bitwise
(the pixels are integers 0..16, exact in float32), and class k of the .ts
(@classLabel true 0 1 ... 9) is digit k, as in the .npy labels.
"""
import csv
import gzip
import importlib.util
import os
import struct
import sys

from npyfile import npy_bytes  # beside this script

N_TRAIN = 1347


def digits_path():
    spec = importlib.util.find_spec("sklearn")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data",
                        "digits.csv.gz")
    return path if os.path.exists(path) else None


def read_digits(path):
    """The images (lists of 64 ints) and their labels."""
    images, labels = [], []
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.reader(f):
            if len(row) != 65:
                sys.exit(f"{path}: a row of {len(row)} fields, expected 65")
            images.append([int(float(x)) for x in row[:64]])
            labels.append(int(float(row[64])))
    return images, labels


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_split(out, name, images, labels):
    n = len(images)
    pixels = [p for img in images for p in img]  # (N, 8, 8) row-major: t = row, d = column
    write(os.path.join(out, f"digits_{name}.npy"),
          npy_bytes("<f4", (n, 8, 8), struct.pack(f"<{len(pixels)}f", *pixels)))
    write(os.path.join(out, f"digits_{name}_labels.npy"),
          npy_bytes("<i8", (n,), struct.pack(f"<{n}q", *labels)))
    with open(os.path.join(out, f"digits_{name}.tsv"), "w") as f:
        for img, lab in zip(images, labels):
            f.write("\t".join([str(lab)] + [str(p) for p in img]) + "\n")
    with open(os.path.join(out, f"digits_{name}.ts"), "w") as f:
        f.write("# scikit-learn's digits: dimension d is image column d, step t row t\n")
        f.write(f"@problemName digits_{name}\n@timeStamps false\n@missing false\n")
        f.write("@univariate false\n@dimensions 8\n@equalLength true\n@seriesLength 8\n")
        f.write("@classLabel true " + " ".join(str(k) for k in range(10)) + "\n@data\n")
        for img, lab in zip(images, labels):
            dims = [",".join(str(img[t * 8 + d]) for t in range(8)) for d in range(8)]
            f.write(":".join(dims) + f":{lab}\n")


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--digits")]
    given = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--digits=")]
    if "--digits" in argv:
        given.append(argv[argv.index("--digits") + 1])
        args.remove(given[-1])
    if len(args) != 1:
        sys.exit(__doc__)
    path = given[0] if given else digits_path()
    if not path or not os.path.exists(path):
        print("digits-to-series: no digits.csv.gz (install python3-sklearn, or give "
              "--digits PATH)", file=sys.stderr)
        return 3
    images, labels = read_digits(path)
    os.makedirs(args[0], exist_ok=True)
    write_split(args[0], "TRAIN", images[:N_TRAIN], labels[:N_TRAIN])
    write_split(args[0], "TEST", images[N_TRAIN:], labels[N_TRAIN:])
    print(f"digits-to-series: {N_TRAIN} train and {len(images) - N_TRAIN} test series "
          f"in {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
