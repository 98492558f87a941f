"""The .npy bytes that data/digits-to-series.py and data/mnist-to-varlen.py
write, by hand (standard library only)."""
import struct


def npy_bytes(descr, shape, payload):
    """A version 1.0 .npy: preamble and header padded to 64 bytes, then payload."""
    dims = ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    total = (10 + len(header) + 1 + 63) // 64 * 64
    header = header.ljust(total - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + payload
