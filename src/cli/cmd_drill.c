/*
 * cmd_drill.c - `tpwallet drill`: the disaster-recovery drill (issue 14).
 */
#include "cli/backup.h"
#include "cli/cli.h"

#include <stdio.h>

#include "banned.h"

int cmd_drill(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tpwallet drill: not yet\n");
	return EXIT_USAGE;
}
