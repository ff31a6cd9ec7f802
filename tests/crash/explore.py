#!/usr/bin/env python3
"""explore.py - the crash-point explorer (issue 20, item 1).

  explore.py run --binary build/tpwallet --shim build/tests/recfs.so \\
                 [--workload small|medium|retention] [--store 0|1] \\
                 [--bound N] [--seed S] [--jobs J] [--keep DIR]
  explore.py replay --binary build/tpwallet --from-dir DIR [--bound N] \\
                 [--seed S]
  explore.py shrink --binary build/tpwallet --from-dir DIR --out CASE
  explore.py regress --binary build/tpwallet tests/crash/regress/*/

shrink takes a kept run that fails, finds its first failing crash point
and state, and removes calls from the trace (whole files' calls first,
then delta debugging over single calls) while a crash at the end of
what is left, in the same kind of state (the same call undone, lost or
torn) still fails the same check.  CASE is then a kept run of its own,
with the short trace (replay --from-dir CASE fails the same way) and
case.json saying what it shows; tests/crash/regress/ holds such cases,
and regress replays them (make crash): each must fail as its case.json
says, or pass when it says "ok" (a recovery bug once fixed).

replay explores again a run kept with --keep DIR (its trace, replies and
digests: nothing but the recoveries runs), so a seed and a kept trace
reproduce a failing case exactly, whatever the threads did in the run.

1. record: runs the workload (tests/crash/workload.py) against a server
   started with the recording shim (tests/crash/recfs.c), which writes
   every file-system call under a fresh directory W (W/data, W/data.kek)
   to a trace; the workload notes, for every reply it got, how many calls
   the trace held then and the journal seq the reply's record has.  After
   a clean stop, `tpwallet recover --digests` gives the digest of every
   prefix of the journal.
2. explore: for every prefix of the trace (every crash point), the
   directory states a crash there may leave under docs/crash-model.md,
   every one up to --bound per crash point and a sample by --seed beyond
   it; each distinct state is written out and checked:
     - `tpwallet recover --check` recovers it, or refuses with its
       documented error (exit 65) while no reply had been received;
     - debits equal credits (the JSON's "balanced");
     - the recovered seq is at least the seq of every reply received
       before the crash point, and at most the final journal's;
     - the digest equals the digest of the journal prefix of that seq;
     - `tpwallet audit check` finds the audit files consistent with the
       journal.
   A failure names the crash point (trace index and call), what the state
   undid, and the check; the run stops at the first one (exit 1).

Prints crash points explored, states (distinct) checked, and the rate per
minute.  Exit 0 all green, 1 a check failed, 2 the workload itself failed.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import workload  # noqa: E402

CHUNK = 4096
FILE, DIR = "f", "d"


# ---- the trace ---------------------------------------------------------

def unquote(p):
    out, i = [], 0
    while i < len(p):
        if p[i] == "%":
            out.append(chr(int(p[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(p[i])
            i += 1
    return "".join(out)


class Op:
    __slots__ = ("idx", "kind", "ino", "path", "path2", "off", "size",
                 "data", "mode", "line")

    def __init__(self, idx, kind, line):
        self.idx, self.kind, self.line = idx, kind, line
        self.ino = self.path = self.path2 = self.data = None
        self.off = self.size = self.mode = 0

    def name(self):
        """The call as a failure names it: index, call, path."""
        what = self.kind
        if self.path:
            what += " " + self.path
        if self.path2:
            what += " -> " + self.path2
        if self.kind == "write" or self.kind == "msync":
            what += " [%d bytes at %d]" % (len(self.data), self.off)
        return "#%d %s" % (self.idx, what)


def parse_trace(path):
    ops = []
    names = {}  # inode -> the path it was created at (for messages)
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line cut by the recorder's own end
            parts = line.split()
            op = Op(int(parts[0]), parts[1], line[:160].rstrip())
            k, a = op.kind, parts[2:]
            if k == "create":
                op.ino, op.path, op.mode = int(a[0]), unquote(a[1]), \
                    int(a[2], 8)
            elif k == "trunc":
                op.ino, op.size = int(a[0]), int(a[1])
            elif k in ("write", "msync"):
                op.ino, op.off = int(a[0]), int(a[1])
                op.data = bytes.fromhex(a[2]) if len(a) > 2 else b""
            elif k in ("fsync", "fdatasync"):
                op.ino = int(a[0])
            elif k in ("dirsync", "unlink", "rmdir"):
                op.path = unquote(a[0])
            elif k in ("rename", "link"):
                op.path, op.path2 = unquote(a[0]), unquote(a[1])
            elif k == "mkdir":
                op.path, op.mode = unquote(a[0]), int(a[1], 8)
            elif k == "falloc":
                op.ino, op.mode = int(a[0]), int(a[1])
                op.off, op.size = int(a[2]), int(a[3])
            elif k in ("sfr", "inject"):
                op.ino = int(a[0]) if k == "sfr" else None
            else:
                raise ValueError("trace line %d: unknown call %r"
                                 % (op.idx, k))
            if k == "create":
                names[op.ino] = op.path
            elif op.ino is not None:
                op.path = names.get(op.ino, "inode %d" % op.ino)
            ops.append(op)
    for i, op in enumerate(ops):
        if op.idx != i + 1:
            raise ValueError("trace: line %d numbered %d" % (i + 1, op.idx))
    return ops


# ---- the model ---------------------------------------------------------

def parent(p):
    return p.rsplit("/", 1)[0] if "/" in p else ""


def ancestors(p):
    out = []
    while "/" in p:
        p = parent(p)
        out.append(p)
    return out


def apply_data(buf, op):
    """Apply one data call (write, trunc, falloc) to a bytearray."""
    if op.kind in ("write", "msync"):
        end = op.off + len(op.data)
        if len(buf) < op.off:
            buf.extend(b"\0" * (op.off - len(buf)))
        buf[op.off:end] = op.data
    elif op.kind == "trunc":
        if op.size < len(buf):
            del buf[op.size:]
        else:
            buf.extend(b"\0" * (op.size - len(buf)))
    elif op.kind == "falloc" and not (op.mode & 1):  # not KEEP_SIZE
        if op.off + op.size > len(buf):
            buf.extend(b"\0" * (op.off + op.size - len(buf)))


def torn(op, keep):
    """The part of a write a crash kept: the 4 KiB-aligned pieces (by file
    offset) whose numbers are in keep, as separate writes."""
    out, start = [], op.off
    pieces = []
    while start < op.off + len(op.data):
        end = min((start // CHUNK + 1) * CHUNK, op.off + len(op.data))
        pieces.append((start, end))
        start = end
    for i in keep:
        s, e = pieces[i]
        w = Op(op.idx, "write", op.line)
        w.ino, w.off = op.ino, s
        w.data = op.data[s - op.off:e - op.off]
        out.append(w)
    return out, len(pieces)


def with_ops(rest, obj, ops):
    out = dict(rest)
    out[obj] = ops
    return out


class Model:
    """The persisted state (what fsyncs made durable) and the calls since:
    pending metadata calls (in order) and pending data calls per file."""

    def __init__(self):
        self.next_obj = 0
        self.ino_obj = {}     # inode -> file object
        self.pns = {"": (DIR, 0o755, None)}  # persisted names
        self.vns = dict(self.pns)             # the process's view
        self.pcontent = {}    # obj -> bytes (persisted)
        self.vcontent = {}    # obj -> bytearray (the process's view)
        self.pmode = {}       # obj -> mode
        self.pmeta = []       # pending metadata ops
        self.pdata = {}       # obj -> [ops]
        self.pver = {}        # obj -> persisted version (hash cache key)
        self.create_obj = {}  # trace index of a create -> its object
        self.synced = set()   # trace indexes of pending calls synced

    # metadata calls on a namespace
    def meta_apply(self, ns, op, objs):
        k = op.kind
        if k == "create":
            ns[op.path] = (FILE, op.mode, objs[op.idx])
        elif k == "mkdir":
            ns[op.path] = (DIR, op.mode, None)
        elif k in ("unlink", "rmdir"):
            for p in [q for q in ns if q == op.path or
                      q.startswith(op.path + "/")]:
                del ns[p]
        elif k == "rename":
            if op.path == "-":
                return
            moved = {q: v for q, v in ns.items()
                     if q == op.path or q.startswith(op.path + "/")}
            for q in moved:
                del ns[q]
            if op.path2 == "-":
                return
            for q in [q for q in ns if q == op.path2 or
                      q.startswith(op.path2 + "/")]:
                del ns[q]
            for q, v in moved.items():
                ns[op.path2 + q[len(op.path):]] = v
        elif k == "link":
            if op.path in ns and op.path2 != "-":
                ns[op.path2] = ns[op.path]

    def paths(self, op):
        return [p for p in (op.path, op.path2) if p and p != "-"]

    def deps_of(self, i, meta):
        """Indexes (in meta) of the earlier pending calls meta[i] needs:
        the same name, or the creation of a directory above it."""
        mine = self.paths(meta[i])
        above = set(a for p in mine for a in ancestors(p))
        out = set()
        for j in range(i):
            theirs = self.paths(meta[j])
            if set(theirs) & set(mine) or \
                    (meta[j].kind == "mkdir" and meta[j].path in above):
                out.add(j)
        return out

    def dependents(self, seeds):
        """seeds and every later pending call that needs one of them."""
        meta = self.pmeta
        drop = set(seeds)
        for j in range(min(seeds) if seeds else len(meta), len(meta)):
            if j not in drop and self.deps_of(j, meta) & drop:
                drop.add(j)
        return drop

    def undoable(self):
        """The pending name calls a crash may undo: those no directory
        fsync has made durable (a synced one is still pending while a
        call it needs is: undoing that one takes it too)."""
        return [i for i, op in enumerate(self.pmeta)
                if op.idx not in self.synced]

    def dirsync(self, d):
        for op in self.pmeta:
            if any(parent(p) == d for p in self.paths(op)):
                self.synced.add(op.idx)
        # In order: a synced call whose needs are all durable is durable.
        left = []
        for i, op in enumerate(self.pmeta):
            needs = self.deps_of(i, self.pmeta)
            if op.idx in self.synced and not any(
                    self.pmeta[j] in left for j in needs):
                self.meta_apply(self.pns, op, self.create_obj)
            else:
                left.append(op)
        self.pmeta = left

    def persist_data(self, obj):
        ops = self.pdata.pop(obj, [])
        if not ops:
            return
        buf = bytearray(self.pcontent.get(obj, b""))
        for op in ops:
            apply_data(buf, op)
        self.pcontent[obj] = bytes(buf)
        self.pver[obj] = self.pver.get(obj, 0) + 1

    def step(self, op):
        k = op.kind
        if k == "create":
            obj = self.next_obj
            self.next_obj += 1
            self.ino_obj[op.ino] = obj
            self.create_obj[op.idx] = obj
            self.pcontent[obj] = b""
            self.vcontent[obj] = bytearray()
            self.pver[obj] = 0
            self.meta_apply(self.vns, op, self.create_obj)
            self.pmeta.append(op)
        elif k in ("mkdir", "unlink", "rmdir", "rename", "link"):
            self.meta_apply(self.vns, op, self.create_obj)
            self.pmeta.append(op)
        elif k in ("write", "trunc", "falloc"):
            obj = self.obj_of(op)
            apply_data(self.vcontent[obj], op)
            self.pdata.setdefault(obj, []).append(op)
        elif k == "msync":
            obj = self.obj_of(op)
            apply_data(self.vcontent[obj], op)
            self.pdata.setdefault(obj, []).append(op)
            # Made durable by the call, with whatever came before it in
            # the file (the model keeps no order inside a mapping).
            self.persist_data(obj)
        elif k in ("fsync", "fdatasync"):
            self.persist_data(self.obj_of(op))
        elif k == "dirsync":
            self.dirsync("" if op.path == "." else op.path)

    def obj_of(self, op):
        if op.ino not in self.ino_obj:
            # A file that existed before the trace: none do (W starts
            # empty), so this is a recorder that missed its creation.
            raise ValueError("%s: a file the trace never created"
                             % op.name())
        return self.ino_obj[op.ino]

    # ---- crash states --------------------------------------------------

    def variants(self):
        """(description, kept metadata indexes, {obj: kept data ops}) for
        every crash state this model allows here, the first two always:
        all pending calls kept (a process crash), none kept."""
        meta = self.pmeta
        allm = set(range(len(meta)))
        alld = {o: list(ops) for o, ops in self.pdata.items()}
        undo = self.undoable()
        out = [("every pending call kept", allm, alld),
               ("every pending call lost",
                allm - self.dependents(undo), {})]
        # One name call undone, with every later one that needs it.
        for i in undo:
            out.append(("undone: " + meta[i].name(),
                        allm - self.dependents([i]), alld))
        # Name calls undone from one on (kept in order up to it).
        for n in range(1, len(undo)):
            out.append(("names kept in order up to " +
                        meta[undo[n - 1]].name(),
                        allm - self.dependents(undo[n:]), alld))
        for obj, ops in self.pdata.items():
            rest = {o: v for o, v in alld.items() if o != obj}
            first = ops[0].name()
            out.append(("lost: every write since the last fsync from "
                        + first, allm, rest))
            for n in range(1, len(ops)):
                out.append(("kept in order up to " + ops[n - 1].name(),
                            allm, with_ops(rest, obj, ops[:n])))
            for j in range(len(ops) - 1):
                out.append(("out of order: kept all but " + ops[j].name(),
                            allm, with_ops(rest, obj,
                                                 ops[:j] + ops[j + 1:])))
            for j, op in enumerate(ops):
                if op.kind != "write":
                    continue
                _, n = torn(op, [])
                if n < 2:
                    continue
                for keep, how in (([0], "first 4 KiB piece"),
                                  (list(range(n - 1)), "all but the last "
                                   "4 KiB piece"),
                                  ([n - 1], "last 4 KiB piece only")):
                    pieces, _ = torn(op, keep)
                    out.append(("torn: %s of %s" % (how, op.name()), allm,
                                with_ops(rest, obj, ops[:j] + pieces)))
        return out

    def build(self, keep_meta, keep_data):
        """The directory a variant leaves: {path: (kind, mode, obj)} and
        {obj: bytes} for the files in it."""
        ns = dict(self.pns)
        for i in sorted(keep_meta):
            self.meta_apply(ns, self.pmeta[i], self.create_obj)
        contents = {}
        for path, (kind, mode, obj) in ns.items():
            if kind != FILE or obj in contents:
                continue
            ops = keep_data.get(obj)
            if ops:
                buf = bytearray(self.pcontent[obj])
                for op in ops:
                    apply_data(buf, op)
                contents[obj] = (None, bytes(buf))
            else:
                contents[obj] = ((obj, self.pver[obj]), self.pcontent[obj])
        return ns, contents


HASH_CACHE = {}


def state_key(ns, contents):
    h = hashlib.sha256()
    for path in sorted(ns):
        kind, mode, obj = ns[path]
        h.update(("%s\0%s\0%o\0" % (path, kind, mode)).encode())
        if kind == FILE:
            key, data = contents[obj]
            d = HASH_CACHE.get(key) if key else None
            if d is None:
                d = hashlib.sha256(data).digest()
                if key:
                    HASH_CACHE[key] = d
            h.update(d)
    return h.hexdigest()


def materialise(ns, contents, where):
    os.makedirs(where)
    for path in sorted(ns, key=lambda p: (p.count("/"), p)):
        if not path:
            continue
        kind, mode, obj = ns[path]
        full = os.path.join(where, path)
        if kind == DIR:
            os.mkdir(full, mode or 0o700)
        else:
            with open(full, "wb") as f:
                f.write(contents[obj][1])
            os.chmod(full, mode)


# ---- the checks --------------------------------------------------------

class Checker:
    def __init__(self, args, ref, acks, final_seq, env):
        self.args, self.ref, self.acks = args, ref, acks
        self.final_seq = final_seq
        self.env = env

    def run(self, where):
        """Recover the state in where; the JSON, the exit status and the
        audit check's (status, output) or None when not run."""
        data = os.path.join(where, "data")
        if not os.path.isdir(data):
            return None, 65, None, "no data directory"
        env = workload.settings_in(self.env, where)
        p = subprocess.run([self.args.binary, "recover", "--check",
                            "--in-place", data], env=env,
                           capture_output=True, text=True, timeout=120)
        try:
            got = json.loads(p.stdout.strip().split("\n")[-1])
        except (ValueError, IndexError):
            got = None
        audit = None
        # The audit log is checked once it holds a signed checkpoint.
        # Before, there is nothing signed to check the journal against,
        # and `audit check` calls a journal without any checkpoint
        # tampered with, which a crash within the first second of a new
        # server leaves (docs/crash-model.md, "Findings").
        cps = os.path.join(data, "audit", "checkpoints")
        signed = os.path.isfile(cps) and os.path.getsize(cps) > 0
        if p.returncode == 0 and got and got.get("seq") and signed:
            a = subprocess.run([self.args.binary, "audit", "check", data],
                               env=env, capture_output=True,
                               text=True, timeout=120)
            audit = (a.returncode, (a.stdout + a.stderr)[-1500:])
        return got, p.returncode, audit, p.stderr[-400:]

    def verdict(self, result, acked_seq, acked_what):
        """None when the state passes, else why not."""
        got, rc, audit, err = result
        if rc == 65:
            if acked_seq:
                return ("refused to recover after %s was acknowledged: %s"
                        % (acked_what, got.get("error") if got else err))
            return None
        if rc not in (0, 1) or not got or not got.get("ok"):
            return "recover exited %d: %r %s" % (rc, got, err)
        if not got.get("balanced"):
            return "debits differ from credits: %r" % got
        seq = got["seq"]
        if seq < acked_seq:
            return ("acknowledged seq %d (%s) lost: recovered only to seq %d"
                    % (acked_seq, acked_what, seq))
        if seq > self.final_seq:
            return "recovered seq %d past the journal's end %d" % (
                seq, self.final_seq)
        if got["digest"] != self.ref.get(seq):
            return ("digest %s at seq %d is not the journal prefix's %s"
                    % (got["digest"], seq, self.ref.get(seq)))
        if audit and audit[0] != 0:
            return "audit check exited %d: %s" % audit
        return None


def acked_before(acks, k):
    """The highest seq acknowledged by a reply received once the trace
    held k calls, and what that reply was."""
    best, what = 0, ""
    for a in acks:
        if a["calls"] <= k and a["seq"] > best:
            best, what = a["seq"], a["what"]
    return best, what


def explore(args, trace, acks, ref, final_seq, env, scratch, out):
    ops = parse_trace(trace)
    model = Model()
    checker = Checker(args, ref, acks, final_seq, env)
    # state key -> the future of its check: a state is checked once, and
    # judged at every crash point that may leave it (against the replies
    # received by then).
    seen = {}
    t0 = time.monotonic()
    points = capped = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)

    def check_state(key, ns, contents):
        where = os.path.join(scratch, key[:24])
        materialise(ns, contents, where)
        try:
            return checker.run(where)
        finally:
            shutil.rmtree(where, ignore_errors=True)

    # --from-path: crash points only from the first call on a path with
    # that prefix (the model still takes every call before it): for a
    # planted bug late in a workload whose earlier points the unplanted
    # run checks already.
    start = 0
    if getattr(args, "from_path", None):
        start = next((i for i, op in enumerate(ops)
                      if any((p or "").startswith(args.from_path)
                             for p in (op.path, op.path2))), len(ops) + 1)
    for k in range(len(ops) + 1):
        if k:
            model.step(ops[k - 1])
        if k < start:
            continue
        points += 1
        vs = model.variants()
        if len(vs) > args.bound:
            capped += 1
            rng = random.Random(args.seed * 1000003 + k)
            vs = vs[:2] + rng.sample(vs[2:], args.bound - 2)
        acked_seq, acked_what = acked_before(acks, k)
        batch = []
        for desc, km, kd in vs:
            ns, contents = model.build(km, kd)
            key = state_key(ns, contents)
            if key not in seen:
                seen[key] = pool.submit(check_state, key, ns, contents)
            batch.append((desc, seen[key]))
        failed = [(desc, why) for desc, why in
                  ((d, checker.verdict(f.result(), acked_seq, acked_what))
                   for d, f in batch) if why]
        if failed:
            # Name the call: a state that differs from the process's view
            # by one undone, lost or torn call, when one fails; of the
            # undone, the latest (undoing an earlier one, a create, also
            # undoes the later ones that need it, a rename of the file).
            undone = [f for f in failed if f[0].startswith("undone:")]
            named = undone[-1:] or [f for f in failed if f[0].startswith(
                ("lost:", "torn:"))]
            at = ops[k - 1].name() if k else "#0 (before any call)"
            for desc, why in (named or failed)[:1] + failed[:1]:
                print("FAILED: crash point %d/%d after %s; state: %s; %s"
                      % (k, len(ops), at, desc, why), file=out)
                if not named:
                    break
            pool.shutdown(wait=True, cancel_futures=True)
            first = (named or failed)[0]
            return (False, points, len(seen), capped,
                    time.monotonic() - t0, (k, first[0], first[1]))
    pool.shutdown(wait=True)
    return True, points, len(seen), capped, time.monotonic() - t0, None


# ---- shrinking a failing case ----------------------------------------

def why_class(why):
    """The check a verdict names (its words before the first number)."""
    for c in ("refused to recover", "recover exited", "debits differ",
              "acknowledged seq", "recovered seq", "digest",
              "audit check"):
        if why.startswith(c):
            return c
    return why.split(":")[0]


def same_state(desc):
    """A state's description without trace indexes (they change as calls
    are removed)."""
    import re
    return re.sub(r"#\d+ ", "#", desc)


def raw_lines(trace):
    with open(trace) as f:
        return [ln for ln in f if ln.endswith("\n")]


def write_subtrace(lines, keep, path):
    """The calls of lines whose positions are in keep, numbered again."""
    with open(path, "w") as f:
        for n, i in enumerate(sorted(keep), 1):
            f.write("%d %s" % (n, lines[i].split(" ", 1)[1]))


def map_acks(acks, keep):
    """Each reply's position in a trace cut to keep: the kept calls among
    those the trace held when it arrived."""
    kept = sorted(keep)
    out = []
    for a in acks:
        n = sum(1 for i in kept if i < a["calls"])
        out.append(dict(a, calls=n))
    return out


def well_formed(ops):
    """Could a process have made these calls: every name made in a
    directory that exists then, every call on a file after its create?"""
    dirs, files, inos = {""}, set(), set()
    for op in ops:
        k = op.kind
        if k in ("create", "mkdir", "link", "rename"):
            made = op.path2 if k in ("link", "rename") else op.path
            if made and made != "-" and parent(made) not in dirs:
                return False
        if k == "mkdir":
            dirs.add(op.path)
        elif k == "create":
            files.add(op.path)
            inos.add(op.ino)
        elif k in ("rename", "link") and op.path not in dirs | files:
            return False
        elif k == "rename" and op.path in dirs and op.path2 != "-":
            dirs.add(op.path2)
        elif k == "rename" and op.path2 != "-":
            files.add(op.path2)
        elif k == "dirsync" and op.path != "." and op.path not in dirs:
            return False
        elif op.ino is not None and op.ino not in inos:
            return False
    return True


def shrink(args, rec, scratch):
    """(kept positions, first failure, tries, rec with the replies
    received by the failing crash point) of the smallest trace found
    that still fails as rec's does at its end; None when rec does not
    fail."""
    trace_full = rec["trace"]
    lines = raw_lines(trace_full)
    env = rec["env"]
    with open(os.devnull, "w") as quiet:
        res = explore(args, trace_full, rec["acks"], rec["digests"],
                      rec["final_seq"], env, os.path.join(scratch, "s0"),
                      quiet)
    if res[0]:
        return None
    k, desc, why = res[5]
    target, klass = same_state(desc), why_class(why)
    # Only the replies received by the crash point count.
    rec = dict(rec, acks=[a for a in rec["acks"] if a["calls"] <= k])
    checker = Checker(args, rec["digests"], rec["acks"], rec["final_seq"],
                      env)
    tries = [0]

    def fails(keep):
        """Does a crash after the last kept call, in the target state,
        still fail the same check, while the state a process crash
        leaves (every pending call kept) passes?  (The second keeps the
        calls that make the trace a sound one: without them a state
        fails because the trace is nonsense, not because of the crash.)
        """
        tries[0] += 1
        path = os.path.join(scratch, "try.trace")
        write_subtrace(lines, keep, path)
        try:
            ops = parse_trace(path)
            if not well_formed(ops):
                return False
            model = Model()
            for op in ops:
                model.step(op)
            allv = model.variants()
            vs = [v for v in allv if same_state(v[0]) == target]
        except (ValueError, KeyError, IndexError):
            return False  # not a trace (a write to a file never created)
        acks = map_acks(rec["acks"], keep)
        acked_seq, acked_what = acked_before(acks, len(ops))

        def verdict(km, kd):
            ns, contents = model.build(km, kd)
            where = os.path.join(scratch, "try")
            shutil.rmtree(where, ignore_errors=True)
            try:
                materialise(ns, contents, where)
                return checker.verdict(checker.run(where), acked_seq,
                                       acked_what)
            except OSError as e:
                return "not materialised: %s" % e
            finally:
                shutil.rmtree(where, ignore_errors=True)
        if not vs or verdict(allv[0][1], allv[0][2]) is not None:
            return False
        for desc2, km, kd in vs:
            why2 = verdict(km, kd)
            if why2 and why_class(why2) == klass:
                return True
        return False

    keep = list(range(k))
    if not fails(keep):
        return None  # fails only with later calls' context: keep all
    # Whole files first: every call naming one path (its creation, data,
    # syncs, renames), cheapest to try.
    ops = parse_trace(trace_full)
    by_path = {}
    made_dirs = set(op.path for op in ops if op.kind == "mkdir")
    for i in keep:
        for p in (ops[i].path, ops[i].path2):
            # A directory's fsyncs go only with the directory itself.
            if ops[i].kind == "dirsync" and p not in made_dirs:
                continue
            if p and p != "-":
                by_path.setdefault(p, set()).add(i)
    for p in sorted(by_path, key=lambda q: -len(by_path[q])):
        cand = [i for i in keep if i not in by_path[p]]
        if len(cand) < len(keep) and fails(cand):
            keep = cand
    # Then delta debugging (ddmin) over single calls, but the syncs of
    # what is kept: they are what made the replies' records durable, so
    # the case still says "durable, and then lost".
    syncs = set(i for i in keep if ops[i].kind in
                ("fsync", "fdatasync", "dirsync", "msync"))
    cands = [i for i in keep if i not in syncs]
    n = 2
    while len(cands) >= 2:
        size = max(1, len(cands) // n)
        chunks = [cands[i:i + size] for i in range(0, len(cands), size)]
        removed = False
        for c in chunks:
            gone = set(c)
            cand = [i for i in keep if i not in gone]
            if cand and fails(cand):
                keep, removed = cand, True
                cands = [i for i in cands if i not in gone]
                n = max(n - 1, 2)
                break
        if not removed:
            if size == 1:
                break
            n = min(len(cands), n * 2)
    return keep, (desc, why), tries[0], rec


def save_case(rec, keep, failure, where, source):
    """A shrunk case as a kept run (replay --from-dir) with case.json."""
    os.makedirs(where, exist_ok=True)
    write_subtrace(raw_lines(rec["trace"]), keep,
                   os.path.join(where, "trace"))
    small = dict(rec, acks=map_acks(rec["acks"], keep), calls=len(keep),
                 env={k: v for k, v in rec["env"].items()
                      if k.startswith("TPWALLET_")})
    save_record(small, where)
    with open(os.path.join(where, "case.json"), "w") as f:
        json.dump({"expect": "FAILED", "state": same_state(failure[0]),
                   "check": why_class(failure[1]), "from": source,
                   "calls": len(keep), "calls_before": rec["calls"]},
                  f, indent=1)
        f.write("\n")


def regress(args, dirs, scratch):
    """Replay saved cases (tests/crash/regress/*): each must end as its
    case.json says (FAILED in its state, by its check; or ok).  The
    number of cases that did not."""
    bad = 0
    for d in dirs:
        with open(os.path.join(d, "case.json")) as f:
            case = json.load(f)
        rec = load_record(d)
        with open(os.devnull, "w") as quiet:
            res = explore(args, rec["trace"], rec["acks"], rec["digests"],
                          rec["final_seq"], rec["env"],
                          os.path.join(scratch, "r"), quiet)
        if res[0]:
            got = "ok"
        else:
            got = "FAILED in state %s by check %s" % (
                same_state(res[5][1]), why_class(res[5][2]))
        want = ("ok" if case["expect"] == "ok" else
                "FAILED in state %s by check %s" % (case["state"],
                                                   case["check"]))
        print("%s %s: %d calls: %s" % ("ok   " if got == want else "FAIL ",
                                         os.path.basename(d.rstrip("/")),
                                         rec["calls"], got))
        if got != want:
            print("      expected: %s" % want)
            bad += 1
    return bad


def save_record(rec, where):
    """What a replay needs beside the trace: replies, digests, settings."""
    with open(os.path.join(where, "record.json"), "w") as f:
        json.dump(dict(rec, trace="trace"), f)


def load_record(where):
    """A run kept with --keep, to explore again exactly (its trace is
    what is replayed: nothing runs but the recoveries)."""
    with open(os.path.join(where, "record.json")) as f:
        rec = json.load(f)
    # The run's own settings over this machine's environment (a saved
    # case holds only its TPWALLET_* settings).
    rec["env"] = dict({k: v for k, v in os.environ.items()
                       if not k.startswith("TPWALLET_")},
                      **{k: v for k, v in rec["env"].items()
                         if k.startswith("TPWALLET_")})
    rec["trace"] = os.path.join(where, rec["trace"])
    rec["digests"] = {int(k): v for k, v in rec["digests"].items()}
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["run", "replay", "shrink",
                                        "regress"])
    ap.add_argument("cases", nargs="*", help="regress: saved case "
                    "directories")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--shim", help="the recorder (run)")
    ap.add_argument("--from-dir", help="replay: a run's --keep directory")
    ap.add_argument("--workload", default="small",
                    choices=sorted(workload.WORKLOADS))
    ap.add_argument("--store", type=int, default=0, choices=[0, 1])
    ap.add_argument("--bound", type=int, default=64,
                    help="states enumerated per crash point; a sample of "
                    "this many (by --seed) beyond it")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", help="keep the trace and the workload's "
                    "files here")
    ap.add_argument("--out", help="shrink: where the shrunk case goes")
    ap.add_argument("--from-path", help="run: crash points only from the "
                    "first call on a path with this prefix (e.g. archive/)")
    args = ap.parse_intermixed_args()
    args.binary = os.path.abspath(args.binary)
    if args.bound < 2:
        ap.error("--bound must be at least 2")
    if args.command == "run" and not args.shim:
        ap.error("run needs --shim")
    if args.command in ("replay", "shrink") and not args.from_dir:
        ap.error("%s needs --from-dir" % args.command)
    if args.command == "shrink" and not args.out:
        ap.error("shrink needs --out")

    base = tempfile.mkdtemp(prefix="tpw-crash-")
    keep = args.keep or base
    try:
        env = dict(os.environ, TPWALLET_STORE=str(args.store))
        env.pop("TPWALLET_CONFIG", None)
        env.pop("LD_PRELOAD", None)
        if args.command == "regress":
            return 1 if regress(args, args.cases, base) else 0
        if args.command == "shrink":
            rec = load_record(args.from_dir)
            t0 = time.monotonic()
            got = shrink(args, rec, base)
            if got is None:
                print("crash explorer: %s does not fail at a crash point "
                      "of its own: nothing to shrink" % args.from_dir)
                return 1
            keep, failure, tries, rec = got
            save_case(rec, keep, failure, args.out, args.from_dir)
            print("crash explorer: shrunk %d calls to %d (%d tries, %.1f s)"
                  "; the state: %s; the check: %s; saved in %s"
                  % (rec["calls"], len(keep), tries,
                     time.monotonic() - t0, same_state(failure[0]),
                     why_class(failure[1]), args.out))
            return 0
        if args.command == "replay":
            rec = load_record(args.from_dir)
        else:
            try:
                rec = workload.record(os.path.abspath(args.binary),
                                      os.path.abspath(args.shim), keep,
                                      args.workload, env)
            except Exception as e:  # the workload's failure, not a crash
                print("crash explorer: the workload failed: %s" % e)
                return 2
            if args.keep:
                save_record(rec, args.keep)
        ok, points, states, capped, took, _ = explore(
            args, rec["trace"], rec["acks"], rec["digests"],
            rec["final_seq"], rec["env"], os.path.join(base, "states"),
            sys.stdout)
        per_min = 60.0 * points / took if took else 0
        print("crash explorer (%s, store = %d, bound %d, seed %d): %d calls "
              "traced, %d replies; %d crash points explored (%d sampled "
              "beyond the bound), %d distinct states checked in %.1f s: "
              "%.0f crash points/min, %.0f states/min: %s"
              % (args.workload, int(rec["env"]["TPWALLET_STORE"]),
                 args.bound, args.seed,
                 rec["calls"], len(rec["acks"]), points, capped, states,
                 took, per_min, 60.0 * states / took if took else 0,
                 "ok" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
