"""auditleaf.py - the audit tree's leaf rules and event receipts, written
here in Python from docs/audit.md alone (not from the C), so the e2e tests
check the server against an independent implementation.

Rule 1 (journal version 1): leaf = SHA-256(0x00 || record).
Rule 2 (journal version 2): leaf = SHA-256(0x00 || L), L = header with
its checksum zeroed || command (16 bytes, zeros unless a command) ||
SHA-256(ext) || events root, where the events root is the RFC 9162 tree
hash over chunk hashes C_j = SHA-256(0x11 || E_32j .. E_32j+31) and
E_i = SHA-256(0x10 || event_i).
"""

import base64
import hashlib
import struct

HEADER = struct.Struct("<IIIHHQQ")
COMMAND = struct.Struct("<HHIII")
TYPE_ACCOUNTS, TYPE_TRANSFERS, TYPE_PULSE, TYPE_COMMAND = 1, 2, 3, 4
CHUNK = 32
EVENT = 128
KIND_ACCOUNTS_OWNED, KIND_TRANSFERS_GUARDED = 1, 2


def sha(b):
    return hashlib.sha256(b).digest()


def node(left, right):
    return sha(b"\x01" + left + right)


def mth(hashes):
    """RFC 9162 tree hash over leaf hashes taken as they are."""
    n = len(hashes)
    if n == 0:
        return sha(b"")
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def path(hashes, m):
    """RFC 9162 PATH(m, D), deepest sibling first."""
    n = len(hashes)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return path(hashes[:k], m) + [mth(hashes[k:])]
    return path(hashes[k:], m - k) + [mth(hashes[:k])]


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise ValueError("index >= size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2, as written there (0 < first < second)."""
    if first == second:
        return not proof and first_root == second_root
    if first & (first - 1) == 0:  # a power of two: prepend first_root
        proof = [first_root] + list(proof)
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def event_hash(ev):
    return sha(b"\x10" + ev)


def chunk_hash(ehs):
    return sha(b"\x11" + b"".join(ehs))


def split(record):
    """(header', command, ext, events) of a record."""
    (magic, crc, size, typ, ver, seq, ts) = HEADER.unpack(record[:32])
    if size != len(record):
        raise ValueError("size field is not the record's length")
    header = record[:4] + b"\0\0\0\0" + record[8:32]
    payload = record[32:]
    if typ == TYPE_COMMAND:
        command = payload[:16]
        kind, _, ext_bytes, count, _ = COMMAND.unpack(command)
        if 16 + ext_bytes + EVENT * count != len(payload):
            raise ValueError("command sizes do not add up")
        ext = payload[16:16 + ext_bytes]
        body = payload[16 + ext_bytes:]
    else:
        command, ext, body = b"\0" * 16, b"", payload
    events = [body[i:i + EVENT] for i in range(0, len(body), EVENT)]
    return header, command, ext, events


def chunks(events):
    ehs = [event_hash(e) for e in events]
    return [chunk_hash(ehs[j:j + CHUNK]) for j in range(0, len(ehs), CHUNK)]


def leaf_v2(header, command, ext_hash, events_root):
    return sha(b"\x00" + header + command + ext_hash + events_root)


def leaf_hash(record):
    """The leaf hash of a whole record under the rule its version names."""
    ver = HEADER.unpack(record[:32])[4]
    if ver == 1:
        return sha(b"\x00" + record)
    if ver != 2:
        raise ValueError("unknown version %d" % ver)
    header, command, ext, events = split(record)
    return leaf_v2(header, command, sha(ext), mth(chunks(events)))


def record_version(record):
    return HEADER.unpack(record[:32])[4]


def b64(s):
    return base64.b64decode(s, validate=True)


def event_count(header, command):
    (magic, crc, size, typ, ver, seq, ts) = HEADER.unpack(header)
    if typ == TYPE_COMMAND:
        return COMMAND.unpack(command)[3]
    return (size - 32) // EVENT


def verify_receipt(rc):
    """Check a receipt (either form) up to the signed root it names:
    returns what it proves, {"index", "seq", "event" (the record's 128
    bytes, or None for a whole entry), "entry" (or None)}.  Raises
    ValueError on any failure.  The checkpoint's signature is the CLI's
    business; here its size and root must be the receipt's."""
    lines = rc["checkpoint"].split("\n")
    if lines[1] != rc["size"] or lines[2] != rc["root"]:
        raise ValueError("size/root are not the checkpoint's")
    index, size = int(rc["index"]), int(rc["size"])
    if "entry" in rc:
        entry = b64(rc["entry"])
        leaf = leaf_hash(entry)
        seq = HEADER.unpack(entry[:32])[5]
        event = None
    else:
        entry = None
        header, command = b64(rc["header"]), b64(rc["command"])
        if HEADER.unpack(header)[4] != 2 or header[4:8] != b"\0" * 4:
            raise ValueError("not a version-2 header, checksum zeroed")
        seq = HEADER.unpack(header)[5]
        n = event_count(header, command)
        k = int(rc["event_index"])
        event = b64(rc["event"])
        chunk = [b64(h) for h in rc["chunk"]]
        first = k // CHUNK * CHUNK
        if k >= n or len(chunk) != min(CHUNK, n - first) or \
                chunk[k - first] != event_hash(event):
            raise ValueError("the event is not at its place in its chunk")
        m = (n + CHUNK - 1) // CHUNK
        events_root = root_from_inclusion(
            k // CHUNK, m, chunk_hash(chunk),
            [b64(h) for h in rc["events_proof"]])
        leaf = leaf_v2(header, command, b64(rc["ext_hash"]), events_root)
    if leaf != b64(rc["leaf_hash"]):
        raise ValueError("leaf_hash is not the leaf of what was given")
    if seq != index + 1:
        raise ValueError("seq is not index + 1")
    if root_from_inclusion(index, size, leaf,
                           [b64(h) for h in rc["proof"]]) != b64(rc["root"]):
        raise ValueError("inclusion proof does not lead to the root")
    return {"index": index, "seq": seq, "event": event, "entry": entry}
