"""test_cluster.py - cluster mode (issue 13), first step: the PostgreSQL
cluster it stands on, and the journal's PostgreSQL mirror.

The cluster (tests/cluster/pgcluster.py) is one etcd and three
Patroni-managed PostgreSQL 15 instances in synchronous mode (strict), on
loopback, run as an unprivileged user, stopped when each test ends.
Figures (failover time) are printed as notes.
"""

import os
import sys
import time

from harness import e2e_test, check, check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

import pgcluster  # noqa: E402


def cluster(ctx, nodes=3):
    return pgcluster.PgCluster(ctx.path("pg"), nodes=nodes, log=print)


@e2e_test(timeout=180)
def test_cluster_patroni_promotes_the_sync_standby_with_a_committed_row(ctx):
    c = cluster(ctx)
    try:
        t0 = time.monotonic()
        c.start(timeout=90)
        leader, sync = c.roles()
        ctx.note("pgcluster: 3 nodes up with leader %s and sync standby %s "
                 "in %.1f s" % (leader, sync, time.monotonic() - t0))
        check(leader and sync and leader != sync,
              "a leader and a distinct sync standby: %r %r" % (leader, sync))
        # The setting the cluster runs with, as a client sees it.
        check_eq(c.psql("SHOW synchronous_commit").strip(), "on",
                 "synchronous_commit")
        check(c.psql("SHOW synchronous_standby_names").strip() != "",
              "a synchronous standby is named")
        c.psql("SET synchronous_commit = on; CREATE TABLE probe "
               "(id int PRIMARY KEY, note text); INSERT INTO probe "
               "VALUES (1, 'before the kill')")
        t_kill = time.monotonic()
        c.kill_node(leader)
        new_leader, _ = c.wait_roles(timeout=60, not_leader=leader)
        check_eq(new_leader, sync, "the promoted node is the sync standby")
        # The first write through the same multi-host string: libpq
        # finds the new primary by itself.
        deadline = time.monotonic() + 30
        while True:
            try:
                c.psql("INSERT INTO probe VALUES (2, 'after')")
                break
            except pgcluster.ClusterError:
                check(time.monotonic() < deadline,
                      "no write accepted 30 s after the promotion")
                time.sleep(0.2)
        rto = time.monotonic() - t_kill
        check_eq(c.psql("SELECT id, note FROM probe ORDER BY id").splitlines(),
                 ["1|before the kill", "2|after"],
                 "rows after the failover")
        ctx.note("pgcluster: kill -9 of the primary to the first accepted "
                 "write: %.1f s (Patroni ttl %d s, loop_wait %d s)"
                 % (rto, c.ttl, c.loop_wait))
    finally:
        c.stop()
    for n in c.nodes:
        check(n.postmaster_pid() is None, "%s postmaster stopped" % n.name)
    check(c.etcd.poll() is not None, "etcd stopped")
