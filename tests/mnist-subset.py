#!/usr/bin/env python3
"""mnist-subset.py SRC DST N_TRAIN N_TEST: the first N_TRAIN training and
N_TEST test images of the IDX set in SRC (raw or .gz), with their labels, as
a smaller IDX set in DST (for training runs that must be short, e.g. under
an emulator)."""
import gzip
import os
import struct
import sys


def main():
    src, dst, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(dst, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, head in (("images-idx3", 16), ("labels-idx1", 8)):
            name = f"{prefix}-{kind}-ubyte"
            path = os.path.join(src, name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
            else:
                with gzip.open(path + ".gz", "rb") as f:
                    data = f.read()
            have = struct.unpack(">I", data[4:8])[0]
            if n > have:
                sys.exit(f"mnist-subset.py: {name} holds {have} items, {n} asked for")
            item = 1
            if head == 16:
                rows, cols = struct.unpack(">II", data[8:16])
                item = rows * cols
            out = data[:4] + struct.pack(">I", n) + data[8:head] + data[head:head + n * item]
            with open(os.path.join(dst, name), "wb") as f:
                f.write(out)


if __name__ == "__main__":
    main()
