#!/usr/bin/env python3
"""Loads a parlstm model exported as safetensors into PyTorch and evaluates it.

    python3 examples/load_in_pytorch.py MODEL.safetensors [--data DIR]
    python3 examples/load_in_pytorch.py MODEL.safetensors --images FILE --labels FILE \
        [--predictions FILE.csv]
    python3 examples/load_in_pytorch.py MODEL.safetensors --values FILE.npy \
        --labels FILE.npy [--lengths FILE.npy] [--predictions FILE.csv]

The module is the one parlstm trains: a linear input projection, an LSTM over
the image sequence, a linear output layer on the last hidden state. Its
parameter names are the tensor names of the file, so load_state_dict(strict=True)
takes the file as it is. The safetensors format is read here in a few lines
(json + struct + torch.frombuffer), since Debian's PyTorch comes without the
safetensors package. The inputs are pixel / 255, read as the metadata says:
its pixel_order first (a model trained with --permute), then one image row per
time step (sequence "rows") or one pixel (sequence "pixels").

A model trained on sequences of real values (parlstm train --train FILE) has
input_scaling "none" or "standard"; --values reads a NumPy .npy of shape
(N, T, D) or (N, T) with numpy, and for "standard" each feature d becomes
(x - normalize_mean[d]) / normalize_std[d], in float32, as parlstm reads it.
With --lengths (a .npy of N integers, as parlstm train --train-lengths takes)
each sequence is read over its own length through
nn.utils.rnn.pack_padded_sequence and classified on its last step, as parlstm
does; without it every sequence is read to step T. The metadata's
class_names, when there, name the classes on stderr.

The last line on stdout is 'result: test_accuracy=A images=N', as from
'parlstm eval'. --predictions writes one CSV row per image: index, label,
predicted class and the C logits.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import torch
from torch import nn


class ParlstmNet(nn.Module):
    def __init__(self, width, hidden, classes, layers):
        super().__init__()
        self.input = nn.Linear(width, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.output = nn.Linear(hidden, classes)

    def forward(self, x, lengths=None):  # x: (batch, steps, width); lengths: (batch) or None
        if lengths is None:
            return self.output(self.lstm(self.input(x))[0][:, -1])
        packed = nn.utils.rnn.pack_padded_sequence(self.input(x), lengths, batch_first=True,
                                                   enforce_sorted=False)
        return self.output(self.lstm(packed)[1][0][-1])  # h_n: each one's last step


def read_safetensors(path):
    """The tensors of a safetensors file (float32 only) and its metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        sys.exit(f"{path}: header length {n} goes beyond the end of the file")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} has dtype {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        tensors[name] = flat.reshape(t["shape"])
    return tensors, meta


def read_idx(path, magic):
    """An IDX file (raw or gzip) as a uint8 tensor: (n, rows, cols) or (n)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    got, n = struct.unpack(">II", raw[:8])
    if got != magic:
        sys.exit(f"{path}: magic {got}, expected {magic}")
    dims = (n,) if magic == 2049 else (n,) + struct.unpack(">II", raw[8:16])
    start = 8 if magic == 2049 else 16
    return torch.frombuffer(bytearray(raw[start:]), dtype=torch.uint8).reshape(dims)


def read_values(path, labels_path, meta, width):
    """A .npy of sequences (and its labels .npy) as the model reads them:
    float32 (N, T, D), standardised when the metadata says "standard"."""
    import numpy as np
    x = torch.from_numpy(np.load(path).astype(np.float32))
    if x.dim() == 2:
        x = x.unsqueeze(2)
    labels = torch.from_numpy(np.load(labels_path).astype(np.int64))
    scaling = meta.get("input_scaling", "pixel/255")
    if scaling not in ("none", "standard"):
        sys.exit(f"{path}: sequences of values, but the model reads images (input scaling {scaling})")
    if x.shape[2] != int(meta.get("image_cols", width)):
        sys.exit(f"{path}: {x.shape[2]} features a step, the model reads {meta.get('image_cols', width)}")
    if scaling == "standard":
        mean = torch.tensor(json.loads(meta["normalize_mean"]), dtype=torch.float32)
        std = torch.tensor(json.loads(meta["normalize_std"]), dtype=torch.float32)
        x = (x - mean) / std
    if meta.get("sequence", "rows") == "pixels":
        x = x.reshape(x.shape[0], -1, 1)
    return x, labels


def read_images(args, meta, width):
    """The IDX images and labels as the model reads them: pixel_order, then
    rows or pixels, scaled by 1/255."""
    images = read_idx(args.images or existing(os.path.join(args.data, "t10k-images-idx3-ubyte")), 2051)
    labels = read_idx(args.labels or existing(os.path.join(args.data, "t10k-labels-idx1-ubyte")), 2049)
    if meta.get("input_scaling", "pixel/255") != "pixel/255":
        sys.exit(f"{args.model}: input scaling {meta['input_scaling']}, expected pixel/255 "
                 "(a model of sequences of values: give --values FILE.npy --labels FILE.npy)")
    # the model's reading of an image (as parlstm eval and predict read them)
    n, rows, cols = images.shape
    want = (int(meta.get("image_rows", rows)), int(meta.get("image_cols", width)))
    if (rows, cols) != want:
        sys.exit(f"images are {rows}x{cols}, the model reads {want[0]}x{want[1]}")
    if meta.get("permuted", "no") == "yes":
        if "pixel_order" not in meta:
            sys.exit(f"{args.model}: a permuted model without its pixel_order")
        order = torch.tensor([int(k) for k in meta["pixel_order"].split(",")])
        images = images.reshape(n, -1)[:, order].reshape(n, rows, cols)
    if meta.get("sequence", "rows") == "pixels":
        images = images.reshape(n, rows * cols, 1)
    return images.float() / 255, labels


def existing(path):
    """path, or path.gz when only that exists (as parlstm reads them)."""
    return path if os.path.exists(path) or not os.path.exists(path + ".gz") else path + ".gz"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="the .safetensors file (parlstm export)")
    ap.add_argument("--data", default="data/mnist",
                    help="directory of t10k-{images-idx3,labels-idx1}-ubyte[.gz]")
    ap.add_argument("--images", help="an IDX images file (instead of --data)")
    ap.add_argument("--values", help="a .npy of sequences of real values (instead of images)")
    ap.add_argument("--labels", help="the labels: an IDX file for --images, a .npy for --values")
    ap.add_argument("--lengths", help="a .npy of each --values sequence's length (1..T)")
    ap.add_argument("--predictions", help="CSV of index,label,class,logit_0..logit_C-1")
    args = ap.parse_args()

    tensors, meta = read_safetensors(args.model)
    hidden, width = tensors["input.weight"].shape
    classes = tensors["output.weight"].shape[0]
    layers = sum(1 for k in tensors if k.startswith("lstm.weight_ih_l"))
    net = ParlstmNet(width, hidden, classes, layers)
    net.load_state_dict(tensors, strict=True)
    net.eval()

    if args.values:
        if not args.labels:
            sys.exit("--values needs --labels FILE.npy")
        x, labels = read_values(args.values, args.labels, meta, width)
    else:
        x, labels = read_images(args, meta, width)
    if x.shape[2] != width:
        sys.exit(f"the inputs give steps of {x.shape[2]}, the model reads {width}")

    lengths = None
    if args.lengths:
        import numpy as np
        if not args.values:
            sys.exit("--lengths goes with --values")
        lengths = torch.from_numpy(np.load(args.lengths).astype(np.int64))
        if lengths.shape != (x.shape[0],) or int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            sys.exit(f"{args.lengths}: expected {x.shape[0]} lengths of 1 to {x.shape[1]}")
    with torch.no_grad():
        logits = torch.cat([net(chunk, None if lengths is None else lengths[k:k + 1000])
                            for k, chunk in zip(range(0, len(x), 1000), x.split(1000))])
    predicted = logits.argmax(dim=1)
    correct = int((predicted == labels.long()).sum())
    if args.predictions:
        with open(args.predictions, "w") as f:
            f.write("index,label,class," + ",".join(f"logit_{c}" for c in range(classes)) + "\n")
            for i in range(len(labels)):
                row = ",".join(f"{v:.9g}" for v in logits[i].tolist())
                f.write(f"{i},{int(labels[i])},{int(predicted[i])},{row}\n")
    print(f"model {width}-{hidden}-{classes}, {layers} layer(s), from {args.model}", file=sys.stderr)
    if "class_names" in meta:
        print("classes: " + ", ".join(f"{c} {name}" for c, name in
                                      enumerate(json.loads(meta["class_names"]))), file=sys.stderr)
    print(f"result: test_accuracy={correct / len(labels):.4f} images={len(labels)}")


if __name__ == "__main__":
    main()
