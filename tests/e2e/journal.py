"""journal.py - read tpwallet journal segments from the outside.

Segment files: DIR/journal/<20-digit first seq>.wal.  Record: 32-byte
header (u32 magic 0x4c575054, u32 CRC-32C of the rest of header+payload,
u32 size, u16 type, u16 version, u64 seq, u64 timestamp ns), then the
payload: 128-byte events (type 1 accounts, 2 transfers), empty for 3
(pulse).  Little-endian.
"""

import os
import re
import struct

MAGIC = 0x4C575054
HEADER = struct.Struct("<IIIHHQQ")
TYPE_ACCOUNTS, TYPE_TRANSFERS, TYPE_PULSE = 1, 2, 3
SEGMENT_RX = re.compile(r"^\d{20}\.wal$")


def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Record:
    def __init__(self, path, offset, size, type, version, seq, timestamp,
                 payload, crc_ok):
        self.path = path
        self.offset = offset
        self.size = size
        self.type = type
        self.version = version
        self.seq = seq
        self.timestamp = timestamp
        self.payload = payload
        self.crc_ok = crc_ok

    @property
    def end(self):
        return self.offset + self.size

    def event_ids(self):
        """u128 ids of the 128-byte events (their first 16 bytes)."""
        out = []
        for off in range(0, len(self.payload) - 127, 128):
            lo, hi = struct.unpack_from("<QQ", self.payload, off)
            out.append(lo | (hi << 64))
        return out

    def __repr__(self):
        return "<record seq=%d type=%d at %s:%d size=%d>" % (
            self.seq, self.type, os.path.basename(self.path), self.offset,
            self.size)


def segments(data_dir):
    jd = os.path.join(data_dir, "journal")
    names = sorted(n for n in os.listdir(jd) if SEGMENT_RX.match(n))
    return [os.path.join(jd, n) for n in names]


def read_segment(path, verify_crc=True):
    """Records of one segment, stopping at the first invalid one."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    off = 0
    while off + HEADER.size <= len(data):
        magic, crc, size, typ, ver, seq, ts = HEADER.unpack_from(data, off)
        if magic != MAGIC or size < HEADER.size or off + size > len(data):
            break
        ok = True
        if verify_crc:
            ok = crc32c(data[off + 8:off + size]) == crc
            if not ok:
                break
        out.append(Record(path, off, size, typ, ver, seq, ts,
                          data[off + HEADER.size:off + size], ok))
        off += size
    return out


def all_records(data_dir):
    recs = []
    for p in segments(data_dir):
        recs.extend(read_segment(p))
    return recs


def flip_byte(path, offset, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def truncate_to(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def append_bytes(path, data):
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
