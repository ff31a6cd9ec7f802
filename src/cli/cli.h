/*
 * cli.h - the command table and what subcommands share.
 *
 * One file per subcommand (src/cli/cmd_<name>.c), each exporting one
 * `cmd_<name>` function, registered in the table in main.c.  A command
 * gets argv with argv[0] == its own name, parses its own flags with
 * getopt_long, answers --help, and returns a process exit status.
 *
 * Settings resolve in this order: command-line flag, environment variable
 * (TPWALLET_*), config file (--config or TPWALLET_CONFIG), default.  See
 * docs/operations.md.
 */
#ifndef TPW_CLI_CLI_H
#define TPW_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

extern const struct command commands[];
extern const size_t commands_count;

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_witness(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);

#define TPWALLET_VERSION "0.1.0"

/* Exit statuses (sysexits-like). */
#define EXIT_USAGE    2
#define EXIT_DATA     65 /* data directory unusable or corrupt */
#define EXIT_SOFTWARE 70

/* Settings shared by init and serve. */
struct settings {
	char data_dir[4096];
	char listen[256]; /* HOST:PORT */
	unsigned threads; /* HTTP worker threads; 0 = number of cores */
	uint64_t body_bytes_max;
	unsigned connection_timeout_s;
	unsigned connections_max;
	uint64_t snapshot_every;
	char log_level[16];
	char kek_file[4200]; /* "" until settings_finish: DATA.kek */
	/* "http://HOST:PORT KEY" of each witness (setting `witness`, which
	 * may be given several times, at most 8). */
	char witnesses[8][1024];
	unsigned nwitnesses;
};

/* Defaults, then the config file (if any), then the environment. */
int settings_load(struct settings *s, const char *config_path);
/* Set one setting by its config-file key ("data", "listen", ...).
 * Returns 0, or -EINVAL with a message on stderr. */
int settings_set(struct settings *s, const char *key, const char *value);

/* After flags: derive what defaults to other settings (kek_file is the
 * data directory's path + ".kek"). */
void settings_finish(struct settings *s);

/* Parse config-file text (`key = value` lines, `#` comments) into s;
 * source names the file in messages.  Returns 0 or -EINVAL (a message on
 * stderr names the line).  Fuzzed by tests/fuzz/fuzz_config.c. */
int settings_parse_text(struct settings *s, const char *text, size_t len,
			const char *source);

/* Make DIR a tpwallet data directory if it is absent or empty.
 * Returns 0 (created or already one), or -errno with a message printed. */
int data_dir_prepare(const char *dir, bool *created);

/* Split "HOST:PORT" ("[::1]:8080" for IPv6).  Returns 0 or -EINVAL. */
int parse_listen(const char *s, char *host, size_t host_bytes,
		 unsigned short *port);

/* Strict unsigned parse with an upper bound.  Returns 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
