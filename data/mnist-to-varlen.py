#!/usr/bin/env python3
"""Writes MNIST as a set of variable-length sequences for parlstm: each
image read row by row (28 steps of 28 pixels), its trailing blank rows
dropped, so that a digit that ends at row 20 is a sequence of 21 steps.
Standard library only: the IDX files are read and the .npy bytes written
by hand.

    data/mnist-to-varlen.py MNISTDIR OUTDIR

MNISTDIR holds the four IDX files (raw or .gz), as data/fetch-mnist.sh
leaves them. In OUTDIR, for SPLIT in train and test:

  mnist_SPLIT.npy          values (N, 28, 28) float32, pixel / 255; the
                           dropped rows stay in the array, as zeros
  mnist_SPLIT_labels.npy   labels (N,) int64, the digit 0..9
  mnist_SPLIT_lengths.npy  lengths (N,) int32: 1 + the last row with a
                           non-zero pixel (1 for a blank image)

and prints the lengths' smallest, mean and largest value.
"""
import array
import gzip
import os
import struct
import sys

from npyfile import npy_bytes  # beside this script


def open_idx(d, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path, (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
    sys.exit(f"{os.path.join(d, stem)}: not found (nor .gz)")


def read_idx(d, stem, dims):
    path, data = open_idx(d, stem)
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x0800 + dims:
        sys.exit(f"{path}: not an IDX file of {dims} dimensions of bytes (magic {magic:#x})")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    size = 1
    for s in shape:
        size *= s
    body = data[4 + 4 * dims:]
    if len(body) != size:
        sys.exit(f"{path}: {len(body)} bytes of data, the header says {size}")
    return shape, body


def le(arr):
    """The bytes of an array.array, little-endian."""
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def convert(src, out, prefix, name):
    (n, rows, cols), pixels = read_idx(src, f"{prefix}-images-idx3-ubyte", 3)
    (nl,), labels = read_idx(src, f"{prefix}-labels-idx1-ubyte", 1)
    if nl != n:
        sys.exit(f"{src}: {n} {prefix} images but {nl} labels")
    lengths = array.array("i")
    side = rows * cols
    for i in range(n):
        img = pixels[i * side:(i + 1) * side]
        last = max((r for r in range(rows) if any(img[r * cols:(r + 1) * cols])), default=0)
        lengths.append(last + 1)
    scale = [p / 255.0 for p in range(256)]
    values = array.array("f", (scale[p] for p in pixels))
    with open(os.path.join(out, f"mnist_{name}.npy"), "wb") as f:
        f.write(npy_bytes("<f4", (n, rows, cols), le(values)))
    with open(os.path.join(out, f"mnist_{name}_labels.npy"), "wb") as f:
        f.write(npy_bytes("<i8", (n,), le(array.array("q", list(labels)))))
    with open(os.path.join(out, f"mnist_{name}_lengths.npy"), "wb") as f:
        f.write(npy_bytes("<i4", (n,), le(lengths)))
    print(f"{name}: {n} sequences, lengths {min(lengths)} to {max(lengths)}, "
          f"mean {sum(lengths) / n:.2f} of {rows}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    convert(src, out, "train", "train")
    convert(src, out, "t10k", "test")


if __name__ == "__main__":
    main()
