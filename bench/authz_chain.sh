# Sourced by bench/run.sh and bench/authz_ab.sh: the authorization
# benchmark's setup on a running server.
#   authz_chain BINARY PORT DIR   (the server's data in DIR/data)
# Accounts 1..8 owned by the administrator; principals merchant
# (registered), shop and device; the chain admin -> merchant -> shop ->
# device in DIR/chain.txt, each link narrower, caps far above what a run
# can spend; one request by hand, so that a setup mistake shows here.
authz_chain() {
	_b=$1
	_cli="--server http://127.0.0.1:$2 --data $3/data"
	# shellcheck disable=SC2086
	"$_b" call $_cli POST /v1/accounts "[$(seq -s, -f '{"id":"%g","ledger":1,"code":1}' 1 8)]" >/dev/null &&
	"$_b" principal create $_cli --name merchant --key-out "$3/merchant.jwk" >/dev/null &&
	"$_b" principal create $_cli --name shop --key-out "$3/shop.jwk" --no-register >/dev/null &&
	"$_b" principal create $_cli --name device --key-out "$3/device.jwk" --no-register >/dev/null &&
	"$_b" delegate issue --key "$3/data/admin.jwk" --to "$3/merchant.jwk" \
		--op transfers:create --op accounts:read --op transfers:read \
		--account 1 --account 2 --account 3 --account 4 --ledger 1 \
		--counterparty 5 --counterparty 6 --counterparty 7 --counterparty 8 \
		--per-transfer-cap 1000000 --total-cap 1000000000000000 --expires 2h \
		--out "$3/l1.txt" 2>/dev/null &&
	"$_b" delegate issue --key "$3/merchant.jwk" --to "$3/shop.jwk" --parent "$3/l1.txt" \
		--op transfers:create --op accounts:read --account 1 --account 2 --ledger 1 \
		--counterparty 5 --counterparty 6 --per-transfer-cap 10000 \
		--total-cap 1000000000000 --out "$3/l2.txt" 2>/dev/null &&
	"$_b" delegate issue --key "$3/shop.jwk" --to "$3/device.jwk" --parent "$3/l2.txt" \
		--op transfers:create --account 1 --ledger 1 --counterparty 5 \
		--per-transfer-cap 1000 --total-cap 1000000000 --out "$3/chain.txt" 2>/dev/null &&
	"$_b" call $_cli --key "$3/device.jwk" --mandate "$3/chain.txt" POST /v1/transfers \
		'{"id":"1","debit_account_id":"1","credit_account_id":"5","amount":"1","ledger":1,"code":1}' >/dev/null
}
