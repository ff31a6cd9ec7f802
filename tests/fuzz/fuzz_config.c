/*
 * fuzz_config.c - libFuzzer harness for the config-file parser
 * (settings_parse_text in src/cli/settings.c, compiled into this harness
 * because the fuzz library leaves src/cli out).
 *
 * Whatever the text, parsing never crashes, and an accepted file leaves
 * every setting within its documented limits.  The parser explains each
 * refusal on stderr: run with -close_fd_mask=2 for a quiet run.
 */
#include "cli/settings.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct settings s;

	if (size > CONFIG_BYTES_MAX)
		return 0;
	if (settings_load(&s, NULL) != 0)
		abort();
	if (settings_parse_text(&s, (const char *)data, size, "fuzz") == 0) {
		if (s.threads > 256 || s.body_bytes_max < 1024 ||
		    s.body_bytes_max > ((uint64_t)64 << 20) ||
		    s.connection_timeout_s < 1 ||
		    s.connection_timeout_s > 3600 || s.connections_max < 1 ||
		    s.connections_max > 65536 || s.snapshot_every < 1000 ||
		    strnlen(s.data_dir, sizeof(s.data_dir)) ==
			    sizeof(s.data_dir) ||
		    strnlen(s.listen, sizeof(s.listen)) == sizeof(s.listen))
			abort();
	}
	return 0;
}
