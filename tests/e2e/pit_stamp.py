#!/usr/bin/env python3
"""Tells a point-in-time copy of an image from a smeared one (pit_test.sh).

  pit_stamp.py init IMAGE BLOCKS     an image of BLOCKS 4 KiB blocks, stamped
  pit_stamp.py write IMAGE SECONDS   rewrites the blocks for SECONDS, sweeping
                                     from the last block to the first, each
                                     write stamped with the next sequence number
  pit_stamp.py check IMAGE           exit 0 when the image shows one instant

Each block starts with MAGIC, its sequence number and its index. The writer
stamps blocks in one fixed order (n-1, n-2, ..., 0, n-1, ...), so at any
instant S (the newest stamp) every block holds its newest stamp at or before
S, which is more than S - n. A copy that holds a later write without an
earlier one (read while the writer went round) has a block at or below
S - n: that is a smeared copy. The check prints what it found either way.
"""
import os
import struct
import sys
import time

MAGIC = b"CAIRNPIT"
BLOCK = 4096
HEADER = struct.Struct("<8sQQ")


def stamp(seq, index):
    return HEADER.pack(MAGIC, seq, index) + bytes(BLOCK - HEADER.size)


def init(path, blocks):
    with open(path, "wb") as f:
        for i in range(blocks):
            f.write(stamp(0, i))
    return 0


def write(path, seconds):
    size = os.path.getsize(path)
    n = size // BLOCK
    fd = os.open(path, os.O_WRONLY)
    seq = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(1024):
            seq += 1
            index = n - 1 - ((seq - 1) % n)
            os.pwrite(fd, stamp(seq, index), index * BLOCK)
    os.close(fd)
    print(f"wrote {seq} stamps over {n} blocks ({seq / n:.1f} sweeps)")
    return 0


def check(path):
    size = os.path.getsize(path)
    n = size // BLOCK
    seqs = []
    with open(path, "rb") as f:
        for i in range(n):
            magic, seq, index = HEADER.unpack(f.read(BLOCK)[: HEADER.size])
            if magic != MAGIC or index != i:
                print(f"block {i}: not a stamped block (magic {magic!r}, index {index})")
                return 2
            seqs.append(seq)
    newest = max(seqs)
    stale = [i for i, s in enumerate(seqs) if newest > 0 and s <= newest - n]
    if stale:
        print(f"smeared: {len(stale)} of {n} blocks hold stamps older than one sweep before "
              f"the newest ({newest}); e.g. block {stale[0]} holds {seqs[stale[0]]}")
        return 1
    print(f"one instant: every block within one sweep of stamp {newest}")
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "init":
        return init(path, int(sys.argv[3]))
    if cmd == "write":
        return write(path, float(sys.argv[3]))
    if cmd == "check":
        return check(path)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
