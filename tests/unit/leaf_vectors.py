#!/usr/bin/env python3
"""leaf_vectors.py - the fixed vectors of tests/unit/test_log_leaf.c,
computed from docs/audit.md's byte layout with hashlib only (no code of
the server).  Run it and compare with the constants in the C test.

The records are the ones the C test builds:
  - rule 2, a guarded transfers command: seq 7, 40 events (two chunks),
    one 128-byte guard;
  - rule 2, a create_transfers batch of 3 events, seq 8;
  - rule 2, a pulse, seq 9;
  - rule 1, the same 3-event batch written at version 1.
Event i's byte j is (7 i + j) mod 256; the guard's byte j is
(0xa0 + j) mod 256; every header's checksum is 0xdeadbeef (rule 2 must
ignore it).
"""
import hashlib
import struct

TS = 1_800_000_000_000_000_000
MAGIC = 0x4C575054


def sha(b):
    return hashlib.sha256(b).digest()


def header(size, typ, ver, seq):
    return struct.pack("<IIIHHQQ", MAGIC, 0xDEADBEEF, size, typ, ver, seq, TS)


def event(i):
    return bytes((7 * i + j) & 0xFF for j in range(128))


def mth(h):
    if len(h) == 0:
        return sha(b"")
    if len(h) == 1:
        return h[0]
    k = 1
    while k * 2 < len(h):
        k *= 2
    return sha(b"\x01" + mth(h[:k]) + mth(h[k:]))


def events_root(events):
    e = [sha(b"\x10" + ev) for ev in events]
    c = [sha(b"\x11" + b"".join(e[j:j + 32])) for j in range(0, len(e), 32)]
    return mth(c)


def rule2(hdr, command, ext, events):
    h = hdr[:4] + b"\0" * 4 + hdr[8:]
    return sha(b"\x00" + h + command + sha(ext) + events_root(events))


guard = bytes((0xA0 + j) & 0xFF for j in range(128))
ev40 = [event(i) for i in range(40)]
cmd = struct.pack("<HHIII", 2, 0, 128, 40, 0)
size = 32 + 16 + 128 + 40 * 128
print("guarded ", rule2(header(size, 4, 2, 7), cmd, guard, ev40).hex())
ev3 = [event(i) for i in range(3)]
print("batch   ", rule2(header(32 + 384, 2, 2, 8), b"\0" * 16, b"",
                        ev3).hex())
print("pulse   ", rule2(header(32, 3, 2, 9), b"\0" * 16, b"", []).hex())
rec1 = header(32 + 384, 2, 1, 8) + b"".join(ev3)
print("rule1   ", sha(b"\x00" + rec1).hex())
