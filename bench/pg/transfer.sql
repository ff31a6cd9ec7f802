-- pgbench script: one double-entry transfer per transaction.
\set d random(1, 100000)
-- Any account but d, uniformly: the offset never wraps back onto d.
\set c 1 + (:d + random(0, 99998)) % 100000
\set amt random(1, 1000)
-- Random 63-bit id stands in for a client's idempotency key; collisions
-- over a few million rows are vanishingly unlikely.
\set id random(1, 9223372036854775806)
BEGIN;
INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, ledger, code)
    VALUES (:id, :d, :c, :amt, 1, 1);
-- Row locks are taken lowest id first so two transfers between the same
-- pair in opposite directions cannot deadlock.
\if :d < :c
UPDATE accounts SET debits_posted = debits_posted + :amt WHERE id = :d;
UPDATE accounts SET credits_posted = credits_posted + :amt WHERE id = :c;
\else
UPDATE accounts SET credits_posted = credits_posted + :amt WHERE id = :c;
UPDATE accounts SET debits_posted = debits_posted + :amt WHERE id = :d;
\endif
COMMIT;
