/*
 * bkmanifest.c - the backup manifest's JSON (see bkmanifest.h): an
 * encoder that writes keys sorted and compact, so the same manifest is
 * always the same bytes (the MAC is over them), and a strict decoder.
 */
#include "log/bkmanifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char hexdig[] = "0123456789abcdef";

static void hex(char *out, const u8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[p[i] >> 4];
		out[2 * i + 1] = hexdig[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int set_hex(json_t *o, const char *k, const u8 *p, size_t n)
{
	char buf[2 * 32 + 1];
	return json_object_set_new(o, k, (hex(buf, p, n), json_string(buf)));
}

static int set_u64(json_t *o, const char *k, u64 v)
{
	return json_object_set_new(o, k, json_integer((json_int_t)v));
}

static const char *const base_names[] = {"none", "store", "snapshot"};

char *bkmanifest_encode(const struct bkmanifest *m, bool with_mac)
{
	json_t *o = json_object(), *files = json_array();
	char *text = NULL;
	int bad = !o || !files;

	for (size_t i = 0; !bad && i < m->nfiles; i++) {
		json_t *f = json_object();
		bad |= !f;
		if (bad)
			break;
		bad |= json_object_set_new(f, "name",
					   json_string(m->files[i].name));
		bad |= set_u64(f, "bytes", m->files[i].bytes);
		bad |= set_hex(f, "sha256", m->files[i].sha256, 32);
		bad |= json_array_append_new(files, f);
	}
	if (!bad) {
		bad |= set_u64(o, "version", m->version);
		bad |= json_object_set_new(o, "id", json_string(m->id));
		bad |= set_hex(o, "origin", m->origin, 32);
		bad |= m->has_previous ? set_hex(o, "previous", m->previous, 32)
				       : json_object_set_new(o, "previous",
							     json_null());
		bad |= json_object_set_new(o, "encrypted",
					   json_boolean(m->encrypted));
		bad |= set_hex(o, "key_id", m->key_id, sizeof(m->key_id));
		bad |= json_object_set_new(
			o, "base",
			json_string(base_names[m->base < 3 ? m->base : 0]));
		bad |= set_u64(o, "base_seq", m->base_seq);
		bad |= set_u64(o, "first_seq", m->first_seq);
		bad |= set_u64(o, "last_seq", m->last_seq);
		bad |= set_u64(o, "first_time_ns", m->first_time_ns);
		bad |= set_u64(o, "last_time_ns", m->last_time_ns);
		bad |= set_u64(o, "created_ns", m->created_ns);
		bad |= set_u64(o, "duration_ms", m->duration_ms);
		bad |= set_u64(o, "bytes", m->bytes);
		bad |= json_object_set(o, "files", files);
		if (with_mac)
			bad |= set_hex(o, "mac", m->mac, 32);
	}
	if (!bad)
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(files);
	json_decref(o);
	return text;
}

bool bkmanifest_name_valid(const char *name)
{
	size_t n = strnlen(name, BKMANIFEST_NAME_BYTES_MAX);

	if (n == 0 || n == BKMANIFEST_NAME_BYTES_MAX || name[0] == '/' ||
	    name[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-' || c == '/';
		if (!ok)
			return false;
		/* Each path component: not empty, not "." or "..". */
		if (i == 0 || name[i - 1] == '/') {
			if (c == '/')
				return false;
			if (c == '.' &&
			    (name[i + 1] == '/' || name[i + 1] == '\0' ||
			     (name[i + 1] == '.' &&
			      (name[i + 2] == '/' || name[i + 2] == '\0'))))
				return false;
		}
	}
	return strcmp(name, BKMANIFEST_FILE) != 0;
}

static int get_hex(json_t *o, const char *k, u8 *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (!s || json_string_length(json_object_get(o, k)) != 2 * n)
		return -EBADMSG;
	for (size_t i = 0; i < 2 * n; i++) {
		const char *d = strchr(hexdig, s[i]);
		if (!d || s[i] == '\0')
			return -EBADMSG;
		u8 v = (u8)(d - hexdig);
		out[i / 2] = (u8)(i % 2 ? (out[i / 2] | v) : (v << 4));
	}
	return 0;
}

static int get_u64(json_t *o, const char *k, u64 *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*out = (u64)json_integer_value(v);
	return 0;
}

static const char *const top_keys[] = {
	"base",	     "base_seq", "bytes",	 "created_ns",	  "duration_ms",
	"encrypted", "files",	 "first_seq",	 "first_time_ns", "id",
	"key_id",    "last_seq", "last_time_ns", "mac",		  "origin",
	"previous",  "version",
};

static int decode(json_t *o, struct bkmanifest *m, const char **why)
{
	u64 v;
	const char *s;
	json_t *files;

	if (!json_is_object(o))
		return *why = "not a JSON object", -EBADMSG;
	if (json_object_size(o) != sizeof(top_keys) / sizeof(top_keys[0]))
		return *why = "members missing or unknown", -EBADMSG;
	for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
		if (!json_object_get(o, top_keys[i]))
			return *why = "members missing or unknown", -EBADMSG;
	if (get_u64(o, "version", &v) || v != BKMANIFEST_VERSION)
		return *why = "unknown manifest version", -EBADMSG;
	m->version = (u32)v;
	s = json_string_value(json_object_get(o, "id"));
	if (!s || !s[0] || strlen(s) >= BKMANIFEST_ID_BYTES_MAX ||
	    strchr(s, '/') || !bkmanifest_name_valid(s))
		return *why = "bad id", -EBADMSG;
	memcpy(m->id, s, strlen(s) + 1);
	if (get_hex(o, "origin", m->origin, 32) ||
	    get_hex(o, "key_id", m->key_id, sizeof(m->key_id)) ||
	    get_hex(o, "mac", m->mac, 32))
		return *why = "bad origin, key_id or mac", -EBADMSG;
	m->has_previous = !json_is_null(json_object_get(o, "previous"));
	if (m->has_previous && get_hex(o, "previous", m->previous, 32))
		return *why = "bad previous", -EBADMSG;
	if (!json_is_boolean(json_object_get(o, "encrypted")))
		return *why = "bad encrypted", -EBADMSG;
	m->encrypted = json_is_true(json_object_get(o, "encrypted"));
	s = json_string_value(json_object_get(o, "base"));
	m->base = 3;
	for (u32 i = 0; s && i < 3; i++)
		if (strcmp(s, base_names[i]) == 0)
			m->base = i;
	if (m->base == 3)
		return *why = "bad base", -EBADMSG;
	if (get_u64(o, "base_seq", &m->base_seq) ||
	    get_u64(o, "first_seq", &m->first_seq) ||
	    get_u64(o, "last_seq", &m->last_seq) ||
	    get_u64(o, "first_time_ns", &m->first_time_ns) ||
	    get_u64(o, "last_time_ns", &m->last_time_ns) ||
	    get_u64(o, "created_ns", &m->created_ns) ||
	    get_u64(o, "duration_ms", &m->duration_ms) ||
	    get_u64(o, "bytes", &m->bytes))
		return *why = "a number missing or negative", -EBADMSG;
	if (m->first_seq != 1 || m->last_seq < m->first_seq ||
	    m->base_seq > m->last_seq || m->last_time_ns < m->first_time_ns)
		return *why = "seqs or times out of order", -EBADMSG;
	if ((m->base == BKMANIFEST_BASE_NONE) != (m->base_seq == 0))
		return *why = "base and base_seq disagree", -EBADMSG;
	files = json_object_get(o, "files");
	if (!json_is_array(files) ||
	    json_array_size(files) > BKMANIFEST_FILES_MAX)
		return *why = "bad files", -EBADMSG;
	m->nfiles = json_array_size(files);
	m->files = calloc(m->nfiles ? m->nfiles : 1, sizeof(*m->files));
	if (!m->files)
		return -ENOMEM;
	u64 sum = 0;
	for (size_t i = 0; i < m->nfiles; i++) {
		json_t *f = json_array_get(files, i);
		struct bkmanifest_file *bf = &m->files[i];
		if (!json_is_object(f) || json_object_size(f) != 3)
			return *why = "bad file entry", -EBADMSG;
		s = json_string_value(json_object_get(f, "name"));
		if (!s ||
		    strlen(s) !=
			    json_string_length(json_object_get(f, "name")) ||
		    !bkmanifest_name_valid(s))
			return *why = "bad file name", -EBADMSG;
		memcpy(bf->name, s, strlen(s) + 1);
		if (get_u64(f, "bytes", &bf->bytes) ||
		    get_hex(f, "sha256", bf->sha256, 32))
			return *why = "bad file entry", -EBADMSG;
		if (sum + bf->bytes < sum)
			return *why = "sizes overflow", -EBADMSG;
		sum += bf->bytes;
	}
	if (sum != m->bytes)
		return *why = "bytes is not the sum of the files'", -EBADMSG;
	return 0;
}

int bkmanifest_decode(const char *text, size_t len, struct bkmanifest *out,
		      const char **why)
{
	json_error_t e;
	json_t *o;
	const char *dummy;
	int ret;

	if (!why)
		why = &dummy;
	memset(out, 0, sizeof(*out));
	if (len > BKMANIFEST_TEXT_BYTES_MAX)
		return *why = "too large", -EBADMSG;
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!o)
		return *why = "not JSON", -EBADMSG;
	ret = decode(o, out, why);
	json_decref(o);
	if (ret != 0)
		bkmanifest_free(out);
	return ret;
}

void bkmanifest_free(struct bkmanifest *m)
{
	free(m->files);
	m->files = NULL;
	m->nfiles = 0;
}
