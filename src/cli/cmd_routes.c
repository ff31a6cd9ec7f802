/*
 * cmd_routes.c - `tpwallet routes [--json]`: the route table of the HTTP
 * API (api/routes.h) as the binary has it, for the tests and tools that
 * check documents against it (docs/openapi.json: tests/e2e/test_openapi.py).
 * It needs no data directory nor server.
 *
 * Each route: its name, template, the methods it allows and, per method,
 * the right it needs ("open": none, the body proves itself or the route
 * is public; "principal": any valid credential; else the mandate ops,
 * any one of which suffices).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "api/routes.h"
#include "crypto/mandate.h"

#include "banned.h"

static const char *const route_names[ROUTE_COUNT] = {
#define X(name, ...) [ROUTE_##name] = #name,
	API_ROUTES(X)
#undef X
};

/* The right as a JSON array of names (or "open" / "principal"). */
static void print_right(u32 right, enum route_scope scope)
{
	if (scope == RA_PUBLIC || right == RIGHT_OPEN) {
		printf("[\"open\"]");
		return;
	}
	if (right == RIGHT_PRINCIPAL) {
		printf("[\"principal\"]");
		return;
	}
	const char *sep = "";
	printf("[");
	for (unsigned i = 0; i < MANDATE_OP_COUNT; i++)
		if (right & (1u << i)) {
			printf("%s\"%s\"", sep, mandate_op_name(1u << i));
			sep = ",";
		}
	printf("]");
}

static void print_json(void)
{
	printf("[");
	for (unsigned r = 0; r < ROUTE_COUNT; r++) {
		const struct api_route_info *ri = &api_routes[r];

		if (r == ROUTE_unmatched)
			continue;
		printf("%s\n {\"name\":\"%s\",\"path\":\"%s\",\"methods\":{",
		       r ? "," : "", route_names[r], ri->tmpl);
		const char *sep = "";
		for (unsigned m = 0; m < METHOD_OTHER; m++) {
			if (!(ri->methods & (1u << m)))
				continue;
			printf("%s\"%s\":", sep, api_method_name(m));
			print_right(api_route_right(r, m), ri->scope);
			sep = ",";
		}
		printf("}}");
	}
	printf("\n]\n");
}

static void print_text(void)
{
	for (unsigned r = 0; r < ROUTE_COUNT; r++) {
		char allow[API_ALLOW_BYTES_MAX];

		if (r != ROUTE_unmatched)
			printf("%-42s %s\n", api_routes[r].tmpl,
			       api_route_allow(r, allow));
	}
}

int cmd_routes(int argc, char **argv)
{
	if (argc > 1 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: tpwallet routes [--json]\n\n"
		       "Print the HTTP API's route table: each template with "
		       "its methods, or\nwith --json also the right each "
		       "method needs (for tests and tools).\n\n"
		       "Example:\n"
		       "  tpwallet routes --json\n");
		return 0;
	}
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0)) {
		fprintf(stderr, "tpwallet routes: unexpected argument '%s'\n",
			argv[argc - 1]);
		return EXIT_USAGE;
	}
	if (argc == 2)
		print_json();
	else
		print_text();
	return 0;
}
