/*
 * auditstate.c - DATA/audit/state, the audit files' own record of what
 * they cover (auditstate.h): encode, decode with its checks, and the
 * atomic replace.
 */
#include "log/auditstate.h"

#include "log/datadir.h"
#include "log/fsfile.h"
#include "log/journal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char MAGIC[8] = {'T', 'P', 'W', 'A', 'U', 'D', 'S', '1'};

static void put32(u8 *p, u32 v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (u8)(v >> (8 * i));
}

static void put64(u8 *p, u64 v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (u8)(v >> (8 * i));
}

static u32 get32(const u8 *p)
{
	u32 v = 0;
	for (unsigned i = 0; i < 4; i++)
		v |= (u32)p[i] << (8 * i);
	return v;
}

static u64 get64(const u8 *p)
{
	u64 v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (u64)p[i] << (8 * i);
	return v;
}

void auditstate_encode(const struct auditstate *s, u8 out[AUDITSTATE_BYTES])
{
	memset(out, 0, AUDITSTATE_BYTES);
	memcpy(out, MAGIC, 8);
	put32(out + 8, AUDITSTATE_VERSION);
	put32(out + 12, AUDITSTATE_BYTES);
	put64(out + 16, s->size);
	memcpy(out + 24, s->root, 32);
	put32(out + 56, s->positions_crc);
	put32(out + 92, crc32c(0, out, 92));
}

int auditstate_decode(const u8 *buf, size_t len, struct auditstate *s,
		      const char **why)
{
	*why = NULL;
	if (len != AUDITSTATE_BYTES) {
		*why = "wrong length";
		return -EBADMSG;
	}
	if (memcmp(buf, MAGIC, 8) != 0) {
		*why = "not an audit state file";
		return -EBADMSG;
	}
	if (get32(buf + 92) != crc32c(0, buf, 92)) {
		*why = "checksum mismatch";
		return -EBADMSG;
	}
	if (get32(buf + 8) != AUDITSTATE_VERSION ||
	    get32(buf + 12) != AUDITSTATE_BYTES) {
		*why = "unknown version";
		return -EBADMSG;
	}
	s->size = get64(buf + 16);
	memcpy(s->root, buf + 24, 32);
	s->positions_crc = get32(buf + 56);
	return 0;
}

int auditstate_read(const char *data_dir, struct auditstate *s,
		    const char **why)
{
	char path[PATH_MAX + 32];
	char *buf = NULL;
	size_t len = 0;

	*why = NULL;
	snprintf(path, sizeof(path), "%s/" AUDITSTATE_PATH, data_dir);
	int ret = fsfile_read(path, AUDITSTATE_BYTES * 2, &buf, &len);
	if (ret == -EFBIG) {
		*why = "wrong length";
		return -EBADMSG;
	}
	if (ret < 0)
		return ret;
	ret = auditstate_decode((const u8 *)buf, len, s, why);
	free(buf);
	return ret;
}

int auditstate_write(const char *data_dir, const struct auditstate *s)
{
	char dir[PATH_MAX + 16];
	u8 buf[AUDITSTATE_BYTES];

	snprintf(dir, sizeof(dir), "%s/" DATADIR_AUDIT, data_dir);
	auditstate_encode(s, buf);
	return fsfile_replace(dir, AUDITSTATE_NAME, buf, sizeof(buf));
}
