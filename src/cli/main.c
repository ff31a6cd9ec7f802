/*
 * main.c - tpwallet's entry point and command table.
 *
 * `tpwallet <command> [options]`; `tpwallet help` lists the commands.
 */
#include "cli/cli.h"
#include "net/http.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

const struct command commands[] = {
	{"init", cmd_init, "create a data directory"},
	{"serve", cmd_serve,
	 "serve the HTTP API (initialises an empty data directory)"},
	{"audit", cmd_audit,
	 "verify receipts, proofs and data offline; list entries decoded"},
	{"witness", cmd_witness,
	 "run a C2SP tlog-witness that cosigns checkpoints"},
	{"call", cmd_call, "send one request to a server, with a credential"},
	{"principal", cmd_principal,
	 "create, register, list and identify principals (Ed25519 keys)"},
	{"keys", cmd_keys, "list or rotate the server's signing keys"},
	{"tls", cmd_tls,
	 "switch the served TLS certificate (primary or standby)"},
	{"delegate", cmd_delegate,
	 "issue, inspect, verify and revoke mandates (delegation chains)"},
	{"policy", cmd_policy, "set, diff and evaluate the client policy"},
	{"bench", cmd_bench, "measure the engine in process and print figures"},
	{"reconcile", cmd_reconcile,
	 "match an acquirer's settlement file against the ledger"},
	{"probe", cmd_probe,
	 "ask a URL as a client version: gateway, tpwallet or served"},
	{"doctor", cmd_doctor,
	 "check a data directory offline, even while served"},
	{"recover", cmd_recover,
	 "recover a data directory offline: seq, digest, balances"},
	{"routes", cmd_routes,
	 "print the HTTP API's routes, their methods and rights"},
	{"backup", cmd_backup,
	 "back up a data directory online; list and verify a location"},
	{"restore", cmd_restore,
	 "build a data directory from a backup location (point in time)"},
	{"drill", cmd_drill,
	 "restore the newest backup, serve it, measure RTO and RPO"},
	{"upgrade", cmd_upgrade,
	 "can a release (this one or another) serve a data directory?"},
	{"cdc", cmd_cdc,
	 "publish every committed change to RabbitMQ or NATS (at least once)"},
	{"version", cmd_version, "print the version"},
	{"help", cmd_help, "list the commands, or show one command's help"},
};
const size_t commands_count = sizeof(commands) / sizeof(commands[0]);

int main(int argc, char **argv)
{
	/* Before anything allocates secure memory or draws random bytes. */
	if (sodium_init() < 0) {
		fprintf(stderr, "tpwallet: libsodium failed to initialise\n");
		return EXIT_SOFTWARE;
	}
	/* libcurl's global state, once, before any thread starts. */
	if (http_global_init() < 0) {
		fprintf(stderr, "tpwallet: libcurl failed to initialise\n");
		return EXIT_SOFTWARE;
	}
	if (argc < 2) {
		char help[] = "help";
		cmd_help(1, (char *[]){help, NULL});
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		name = "help";
	if (strcmp(name, "--version") == 0)
		name = "version";
	for (size_t i = 0; i < commands_count; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr,
		"tpwallet: unknown command '%s' (see 'tpwallet help')\n", name);
	return EXIT_USAGE;
}
