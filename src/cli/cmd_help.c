/*
 * cmd_help.c - `tpwallet help [COMMAND]`.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

int cmd_help(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--help") != 0 &&
	    strcmp(argv[1], "-h") != 0) {
		for (size_t i = 0; i < commands_count; i++)
			if (strcmp(commands[i].name, argv[1]) == 0 &&
			    commands[i].fn != cmd_help) {
				char flag[] = "--help";
				return commands[i].fn(
					2, (char *[]){argv[1], flag, NULL});
			}
		if (strcmp(argv[1], "help") != 0) {
			fprintf(stderr, "tpwallet help: unknown command '%s'\n",
				argv[1]);
			return EXIT_USAGE;
		}
	}
	printf("usage: tpwallet <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < commands_count; i++)
		printf("  %-9s %s\n", commands[i].name, commands[i].summary);
	printf("\n'tpwallet <command> --help' shows a command's options.\n"
	       "Settings: flags, then TPWALLET_* environment variables, then "
	       "the config file (docs/operations.md).\n\n"
	       "Example:\n"
	       "  tpwallet help call\n");
	return 0;
}
