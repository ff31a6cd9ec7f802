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


def _checkpoint_frames(raw):
    """(start, end, size) of each "<bytes>\\n<note>" frame of
    DATA/audit/checkpoints, stopping at the first malformed one."""
    out = []
    off = 0
    while off < len(raw):
        nl = raw.find(b"\n", off)
        if nl < 0 or not raw[off:nl].isdigit():
            break
        n = int(raw[off:nl])
        note = raw[nl + 1:nl + 1 + n]
        if len(note) < n:
            break
        lines = note.split(b"\n")
        size = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0
        out.append((off, nl + 1 + n, size))
        off = nl + 1 + n
    return out


def uncover(data_dir, seq):
    """Make the audit files cover only the records before seq, as after a
    crash in the middle of writing record seq: the audit thread reads only
    synced records, so neither DATA/audit/leaves nor a signed checkpoint
    can hold a record that was never acknowledged."""
    leaves = os.path.join(data_dir, "audit", "leaves")
    if os.path.exists(leaves) and os.path.getsize(leaves) > 32 * (seq - 1):
        truncate_to(leaves, 32 * (seq - 1))
    cpf = os.path.join(data_dir, "audit", "checkpoints")
    if os.path.exists(cpf):
        with open(cpf, "rb") as f:
            raw = f.read()
        kept = b"".join(raw[a:b] for a, b, size in _checkpoint_frames(raw)
                        if size < seq)
        with open(cpf, "wb") as f:
            f.write(kept)
            f.flush()
            os.fsync(f.fileno())


def checkpoint_sizes(data_dir):
    """The tree size of every frame of DATA/audit/checkpoints."""
    cpf = os.path.join(data_dir, "audit", "checkpoints")
    if not os.path.exists(cpf):
        return []
    with open(cpf, "rb") as f:
        return [size for _, _, size in _checkpoint_frames(f.read())]
