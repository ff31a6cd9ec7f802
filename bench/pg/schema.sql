-- The schema a wallet team would write on PostgreSQL instead of tpwallet:
-- balances kept on the account row, one row per transfer.  bigint minor
-- units rather than numeric(39,0): it is what teams actually pick, and
-- it gives PostgreSQL its faster arithmetic (an honest baseline, not a
-- straw man).
CREATE TABLE accounts (
    id             bigint  PRIMARY KEY,
    ledger         integer NOT NULL,
    code           integer NOT NULL,
    -- bit 2 = debits must not exceed credits, as in tpwallet/TigerBeetle
    flags          integer NOT NULL DEFAULT 0,
    debits_posted  bigint  NOT NULL DEFAULT 0,
    credits_posted bigint  NOT NULL DEFAULT 0,
    -- Enforced by the database only for accounts that opt in, so the
    -- common (unflagged) account pays just the expression evaluation.
    CONSTRAINT balance_limit
        CHECK (flags & 2 = 0 OR debits_posted <= credits_posted)
);

CREATE TABLE transfers (
    -- Client-chosen id: a retried request hits the primary key and fails
    -- instead of moving money twice.
    id                bigint  PRIMARY KEY,
    debit_account_id  bigint  NOT NULL REFERENCES accounts (id),
    credit_account_id bigint  NOT NULL REFERENCES accounts (id),
    amount            bigint  NOT NULL CHECK (amount > 0),
    ledger            integer NOT NULL,
    code              integer NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account_id <> credit_account_id)
);
-- tpwallet answers /v1/accounts/{id}/transfers, so the baseline must be
-- able to as well; these indexes are part of the write cost.
CREATE INDEX transfers_debit_idx  ON transfers (debit_account_id);
CREATE INDEX transfers_credit_idx ON transfers (credit_account_id);

INSERT INTO accounts (id, ledger, code)
SELECT g, 1, 1 FROM generate_series(1, 100000) AS g;
VACUUM ANALYZE accounts;
