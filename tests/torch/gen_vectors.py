#!/usr/bin/python3
"""Writes tests/torch/vectors.bin (one LSTM layer), vectors-l2.bin (two
stacked layers) and vectors-packed.bin (two layers, sequences of different
lengths through nn.utils.rnn.pack_padded_sequence): test vectors for
parlstm's model from PyTorch autograd in float64 (read by
tests/check_torch.c).

A tiny configuration (D=5 inputs, H=20 units, C=4 classes, T=6 steps, n=7
sequences): H = 20 is not a multiple of parlstm's 16-unit panels, so the
padding is exercised. The model is parlstm's, in nn.LSTM terms:

    x_t' = x_t W_in + b_in                       (D -> H)
    nn.LSTM(H, H, num_layers=L): weight_ih_lk = W_k[:H].T,
                   weight_hh_lk = W_k[H:].T, bias_ih_lk = b_k,
                   bias_hh_lk = 0, gates i, f, g, o
    logits = h_T W_out + b_out                   (H -> C; packed: h at each
                                                  sequence's own last step)
    loss = mean softmax cross-entropy over the n sequences

File layout, little-endian:
    magic  b"PLTV"
    u32    version 1: D, H, C, T, n (one layer)
           version 2: L, D, H, C, T, n
           version 3: L, D, H, C, T, n, and lengths after the labels
    f32    params (parlstm's flat layout: w_in (D,H), b_in (H), per layer
           w_lstm (2H,4H), b_lstm (4H), then w_out (H,C), b_out (C), each
           row-major)
    f32    x (n, T, D)
    u8     labels (n)
    i32    lengths (n), version 3 only: steps of each sequence, 1..T (the
           x steps past them are NaN: never to be read)
    f64    loss (mean over n)
    f64    logits (n, C)
    f64    gradient of the mean loss, parlstm's flat layout

The float32 parameters and inputs are what parlstm reads; PyTorch computes
with exactly those values widened to float64. The outputs are computed twice,
with nn.LSTM and with a hand-written cell, which must agree to 1e-12.

Usage: tests/torch/gen_vectors.py [DIR]   (default: this script's directory).
Needs PyTorch (Debian: python3-torch, run with /usr/bin/python3).
"""
import os
import struct
import sys

import numpy as np
import torch

D, H, C, T, N = 5, 20, 4, 6, 7
SEED = 20240607
L = 1  # layers of the file being written (main sets it)
LENGTHS = None  # each sequence's steps, or None: all T (main sets it)


def split(flat):
    """Views of a flat parlstm-layout tensor as (w_in, b_in, [w_k], [b_k],
    w_out, b_out)."""
    sizes = [(D, H), (H,)] + [(2 * H, 4 * H), (4 * H,)] * L + [(H, C), (C,)]
    out, o = [], 0
    for s in sizes:
        k = int(np.prod(s))
        out.append(flat[o:o + k].reshape(s))
        o += k
    assert o == flat.numel()
    return out[0], out[1], out[2:-2:2], out[3:-2:2], out[-2], out[-1]


def n_params():
    return D * H + H + L * (2 * H * 4 * H + 4 * H) + H * C + C


class NNLSTMForward:
    """The model on torch.nn.LSTM. nn.LSTM's weights must be its own
    Parameters (torch 1.13's functional_call does not reach the fused RNN
    call), so the flat tensor's LSTM parts are copied in; their gradients are
    copied back into parlstm's layout by loss_logits_grad_nn."""

    def __call__(self, flat, x):
        w_in, b_in, w, b, w_out, b_out = split(flat)
        lstm = torch.nn.LSTM(H, H, num_layers=L, batch_first=True).double()
        with torch.no_grad():
            for k in range(L):
                getattr(lstm, f"weight_ih_l{k}").copy_(w[k][:H].T)
                getattr(lstm, f"weight_hh_l{k}").copy_(w[k][H:].T)
                getattr(lstm, f"bias_ih_l{k}").copy_(b[k])
                getattr(lstm, f"bias_hh_l{k}").zero_()
        self.lstm = lstm
        if LENGTHS is None:
            y, _ = lstm(x @ w_in + b_in)
            return y[:, -1] @ w_out + b_out
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x @ w_in + b_in, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = lstm(packed)  # h_n in the sequences' own order
        return h_n[-1] @ w_out + b_out


def loss_logits_grad_nn(params32, x32, labels):
    flat = torch.tensor(params32, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(np.nan_to_num(x32, nan=0.0), dtype=torch.float64)
    fw = NNLSTMForward()
    logits = fw(flat, x)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels, dtype=torch.int64))
    lstm = fw.lstm
    names = [f"{kind}_l{k}" for k in range(L) for kind in ("weight_ih", "weight_hh", "bias_ih")]
    grads = torch.autograd.grad(loss, [flat] + [getattr(lstm, n) for n in names])
    g = grads[0].clone()
    _, _, gw, gb, _, _ = split(g)  # views into g: zero from the no-grad copy
    for k in range(L):
        assert float(gw[k].abs().max()) == 0 and float(gb[k].abs().max()) == 0
        gw[k][:H] = grads[1 + 3 * k].T
        gw[k][H:] = grads[2 + 3 * k].T
        gb[k][:] = grads[3 + 3 * k]
    return loss.item(), logits.detach().numpy(), g.numpy()


def forward_by_hand(flat, x):
    w_in, b_in, w, b, w_out, b_out = split(flat)
    inputs = [x[:, t] @ w_in + b_in for t in range(T)]
    for k in range(L):
        h = torch.zeros(x.shape[0], H, dtype=torch.float64)
        c = torch.zeros_like(h)
        outputs = []
        for t in range(T):
            z = torch.cat([inputs[t], h], 1) @ w[k] + b[k]
            i, f, g, o = z.split(H, 1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            # a sequence that has ended keeps its last state (and reads
            # nothing more: its inputs past the end are zeroed below)
            run = torch.ones(x.shape[0], 1, dtype=torch.bool) if LENGTHS is None else \
                torch.tensor([[t < n] for n in LENGTHS])
            c = torch.where(run, c_new, c)
            h = torch.where(run, h_new, h)
            outputs.append(h)
        inputs = outputs
    return h @ w_out + b_out


def loss_logits_grad(forward, params32, x32, labels):
    flat = torch.tensor(params32, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(np.nan_to_num(x32, nan=0.0), dtype=torch.float64)
    logits = forward(flat, x)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels, dtype=torch.int64))
    (grad,) = torch.autograd.grad(loss, flat)
    return loss.item(), logits.detach().numpy(), grad.numpy()


def write(out, layers, lengths=None):
    global L, LENGTHS
    L, LENGTHS = layers, lengths
    gen = torch.Generator().manual_seed(SEED + layers - 1)
    params = (torch.rand(n_params(), generator=gen, dtype=torch.float64) - 0.5)
    for k in range(L):  # the forget block of each b_lstm
        b0 = D * H + H + k * (2 * H * 4 * H + 4 * H) + 2 * H * 4 * H
        params[b0 + H:b0 + 2 * H] += 1.0
    params32 = params.numpy().astype("<f4")
    x32 = (torch.rand(N, T, D, generator=gen, dtype=torch.float64) * 2 - 1).numpy().astype("<f4")
    labels = np.array([(3 * k + 1) % C for k in range(N)], dtype=np.uint8)
    for s, n in enumerate(lengths or []):
        x32[s, n:] = np.nan
    assert len(set(labels.tolist())) == C

    loss, logits, grad = loss_logits_grad_nn(params32, x32, labels)
    loss2, logits2, grad2 = loss_logits_grad(forward_by_hand, params32, x32, labels)
    assert abs(loss - loss2) <= 1e-12 * abs(loss), (loss, loss2)
    assert np.max(np.abs(logits - logits2)) <= 1e-12
    assert np.max(np.abs(grad - grad2)) <= 1e-12 * np.max(np.abs(grad))

    with open(out, "wb") as f:
        f.write(b"PLTV")
        if lengths:
            f.write(struct.pack("<7I", 3, L, D, H, C, T, N))
        elif L == 1:
            f.write(struct.pack("<6I", 1, D, H, C, T, N))
        else:
            f.write(struct.pack("<7I", 2, L, D, H, C, T, N))
        f.write(params32.tobytes())
        f.write(x32.tobytes())
        f.write(labels.tobytes())
        if lengths:
            f.write(np.array(lengths, dtype="<i4").tobytes())
        f.write(struct.pack("<d", loss))
        f.write(logits.astype("<f8").tobytes())
        f.write(grad.astype("<f8").tobytes())
    print(f"{out}: {os.path.getsize(out)} bytes; loss {loss:.10f}, "
          f"torch {torch.__version__}, {L} layer(s), {n_params()} parameters")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    write(os.path.join(d, "vectors.bin"), 1)
    write(os.path.join(d, "vectors-l2.bin"), 2)
    write(os.path.join(d, "vectors-packed.bin"), 2, [3, 6, 1, 6, 2, 5, 4])


if __name__ == "__main__":
    main()
