/*
 * fuzz_cli_delegate.c - libFuzzer harness for what `tpwallet delegate`
 * and the client commands read from files: chain files (links joined by
 * '~', trailing white space), the unverified decode of `delegate
 * inspect` (base64url and JSON per link), the parent chain of `delegate
 * issue --parent`, the chain of `delegate verify`, the mandate of `call
 * --mandate` and the JWK key files (src/cli/cmd_delegate.c and the
 * helpers of src/cli/cmd_call.c, compiled into this harness to reach
 * their statics, because the fuzz library leaves src/cli out, as
 * fuzz_config.c does; settings.c and httpc.c come along for parse_u64
 * and the client's HTTP calls, which no mode makes).
 *
 * The first input byte picks a mode (byte % 5) and its options
 * (byte / 5); the rest is the file:
 *   0  a chain for `delegate inspect` (options % 3: plain, --json,
 *      --jti); split_chain alone must cut it into links that join back
 *      to the text;
 *   1  a chain for `delegate verify --root-key K0` (bit 0 --admin, bit 1
 *      --aud tpwallet, bit 2 K0 given as its private JWK);
 *   2  the parent chain of `delegate issue --parent` by key K1 to K2
 *      (bit 0: by K2 to K0; bit 1: --to is a private JWK; bits 2-3 pick
 *      a set of flags, one of them --out FILE); a link written to FILE
 *      must follow the parent, which it names as written;
 *   3  a key file (mode 0600, or 0644 with bit 0) for client_load_seckey
 *      and client_load_pubkey: a private key's public half is what the
 *      public loader gives, and both keys survive a JWK round trip;
 *   4  a mandate file for `call --mandate` (load_chain): an accepted
 *      chain is one line of base64url, '.' and '~', and the DPoP proof
 *      `call` signs over it verifies.
 * K0, K1, K2 are Ed25519 keys from fixed seeds; the seed chains are
 * K0 (administrator) -> K1 -> K2 -> K0, issued by `tpwallet delegate
 * issue`, valid until 2100.  Properties: nothing crashes, leaks or reads
 * out of bounds, every exit status is a documented one, and the ones
 * above.  The commands print on stdout and stderr: run with
 * -close_fd_mask=3 for a quiet run.
 *
 * Built by `make fuzz` (build/fuzz/fuzz_cli_delegate); run:
 *   build/fuzz/fuzz_cli_delegate -close_fd_mask=3 \
 *     -dict=tests/fuzz/cli_delegate.dict \
 *     build/fuzz/corpus-fuzz_cli_delegate tests/fuzz/corpus/cli_delegate
 */
#include "cli/settings.c"
/* cmd_call.c and cmd_delegate.c each have a static usage(). */
#define usage call_usage
#include "cli/cmd_call.c"
#undef usage
#include "cli/cmd_delegate.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"fuzz_cli_delegate: %s failed (line %d)\n",    \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define INPUT_BYTES_MAX (CHAIN_FILE_BYTES_MAX + 1024)
#define NKEYS		3

static struct jose_seckey *keys[NKEYS];
static char scratch[64];
/* scratch/k<i>.jwk (private), scratch/k<i>.pub.jwk, the input, --out */
static char path_sec[NKEYS][128], path_pub[NKEYS][128];
static char path_in[128], path_out[128];
static bool ready;

static void write_file(const char *path, const void *buf, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(len == 0 || write(fd, buf, len) == (ssize_t)len);
	CHECK(fchmod(fd, mode) == 0);
	CHECK(close(fd) == 0);
}

/* The scratch directory goes when the fuzzer exits normally. */
static void remove_scratch(void)
{
	for (int k = 0; k < NKEYS; k++) {
		unlink(path_sec[k]);
		unlink(path_pub[k]);
	}
	unlink(path_in);
	unlink(path_out);
	rmdir(scratch);
}

static void init(void)
{
	const char *tmp = getenv("TMPDIR");
	char jwk[JOSE_JWK_BYTES_MAX + 2];

	if (ready)
		return;
	CHECK(jose_init() == 0);
	snprintf(scratch, sizeof(scratch), "%s/fuzz_cli_delegate.XXXXXX",
		 tmp && tmp[0] && strlen(tmp) < 32 ? tmp : "/tmp");
	CHECK(mkdtemp(scratch) != NULL);
	atexit(remove_scratch);
	for (int k = 0; k < NKEYS; k++) {
		/* The seeds of the corpus's chains: "fuzz-dlg0".. */
		unsigned char seed[32] = {'f', 'u', 'z',
					  'z', '-', 'd',
					  'l', 'g', (unsigned char)('0' + k)};
		struct jose_pubkey pub;
		CHECK(jose_seckey_from_seed(seed, NULL, &keys[k]) == 0);
		snprintf(path_sec[k], sizeof(path_sec[k]), "%s/k%d.jwk",
			 scratch, k);
		snprintf(path_pub[k], sizeof(path_pub[k]), "%s/k%d.pub.jwk",
			 scratch, k);
		CHECK(jose_seckey_to_jwk(keys[k], jwk, sizeof(jwk)) == 0);
		write_file(path_sec[k], jwk, strlen(jwk), 0600);
		sodium_memzero(jwk, sizeof(jwk));
		jose_seckey_public(keys[k], &pub);
		CHECK(jose_pubkey_to_jwk(&pub, jwk, sizeof(jwk)) == 0);
		write_file(path_pub[k], jwk, strlen(jwk), 0644);
	}
	snprintf(path_in, sizeof(path_in), "%s/in", scratch);
	snprintf(path_out, sizeof(path_out), "%s/out", scratch);
	ready = true;
}

static bool exit_status(int r)
{
	return r == 0 || r == 1 || r == EXIT_USAGE;
}

/* The chain text as read_chain leaves it: without trailing white space. */
static size_t trimmed(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
			   s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len;
}

/* ---- mode 0: delegate inspect -------------------------------------------- */

static void fuzz_inspect(const char *in, size_t len, unsigned opts)
{
	static const char *const flag[3] = {NULL, "--json", "--jti"};
	char a0[] = "inspect", a1[16];
	char *argv[4] = {a0, NULL, NULL, NULL};
	struct links *l = malloc(sizeof(*l));
	size_t tlen = trimmed(in, len);
	int argc = 1, r;

	CHECK(l != NULL);
	if (split_chain(in, tlen, l) == 0) {
		size_t at = 0;
		CHECK(l->n >= 1 && l->n <= MANDATE_LINKS_MAX);
		for (unsigned i = 0; i < l->n; i++) {
			CHECK(l->at[i] == in + at && l->len[i] > 0);
			CHECK(memchr(l->at[i], '~', l->len[i]) == NULL);
			at += l->len[i];
			CHECK(i + 1 == l->n ? at == tlen : in[at] == '~');
			at++;
		}
	}
	free(l);
	if (flag[opts % 3]) {
		snprintf(a1, sizeof(a1), "%s", flag[opts % 3]);
		argv[argc++] = a1;
	}
	argv[argc++] = path_in;
	r = delegate_inspect(argc, argv);
	CHECK(exit_status(r));
}

/* ---- mode 1: delegate verify --------------------------------------------- */

static void fuzz_verify(unsigned opts)
{
	char a0[] = "verify", a2[] = "--root-key", a4[] = "--admin",
	     a5[] = "--aud", a6[] = "tpwallet";
	char *argv[8] = {a0, path_in, a2, opts & 4 ? path_sec[0] : path_pub[0]};
	int argc = 4, r;

	if (opts & 1)
		argv[argc++] = a4;
	if (opts & 2) {
		argv[argc++] = a5;
		argv[argc++] = a6;
	}
	r = delegate_verify(argc, argv);
	CHECK(exit_status(r));
}

/* ---- mode 2: delegate issue --parent ------------------------------------- */

static void fuzz_issue(const char *in, size_t len, unsigned opts)
{
	/* Flags the parent is weighed against: narrower than every seed
	 * chain; as wide as can be; narrower with explicit times; narrower
	 * with an audience, a jti and --out. */
#define NARROW                                                                 \
	"--op", "transfers:create", "--account", "1", "--ledger", "1",         \
		"--counterparty", "2", "--per-transfer-cap", "5",              \
		"--total-cap", "10", "--uses", "1"
	static const char *const sets[4][24] = {
		{NARROW, NULL},
		{"--op", "*", "--expires", "1d", NULL},
		{NARROW, "--nbf", "1700000000", "--exp", "4102444800", NULL},
		{NARROW, "--aud", "tpwallet", "--jti", "fuzz-1", "--out", NULL},
	};
#undef NARROW
	const unsigned from = opts & 1 ? 2 : 1, to = (from + 1) % NKEYS;
	const unsigned set = (opts >> 2) & 3;
	const char *fixed[32] = {"issue",
				 "--key",
				 path_sec[from],
				 "--to",
				 opts & 2 ? path_sec[to] : path_pub[to],
				 "--parent",
				 path_in};
	char *argv[32], args[32][128];
	int argc = 7, r;

	for (unsigned i = 0; sets[set][i]; i++)
		fixed[argc++] = sets[set][i];
	if (set == 3) {
		fixed[argc++] = path_out;
		CHECK(unlink(path_out) == 0 || errno == ENOENT);
	}
	/* getopt_long permutes argv: writable copies, as a shell gives. */
	for (int i = 0; i < argc; i++) {
		snprintf(args[i], sizeof(args[i]), "%s", fixed[i]);
		argv[i] = args[i];
	}
	argv[argc] = NULL;
	r = delegate_issue(argc, argv);
	CHECK(exit_status(r));
	if (set == 3 && r == 0) {
		/* "<parent>~<link>\n", the parent as read_chain trims it. */
		size_t plen = trimmed(in, len), olen = 0;
		char *out = NULL;
		json_t *h, *c;
		CHECK(client_read_file(path_out, CHAIN_FILE_BYTES_MAX + 4096,
				       &out, &olen) == 0);
		CHECK(olen > plen + 2 && memcmp(out, in, plen) == 0 &&
		      out[plen] == '~' && out[olen - 1] == '\n');
		CHECK(decode_link(out + plen + 1, olen - plen - 2, &h, &c) ==
		      0);
		json_decref(h);
		json_decref(c);
		free(out);
	}
}

/* ---- mode 3: key files --------------------------------------------------- */

static void fuzz_keyfile(unsigned opts)
{
	struct client c;
	struct jose_seckey *sk = NULL, *back_sk = NULL;
	struct jose_pubkey pk, from_sk, back;
	char jwk[JOSE_JWK_BYTES_MAX + 2];
	int rs, rp;

	client_init(&c, "fuzz_cli_delegate");
	rs = client_load_seckey(&c, path_in, &sk);
	rp = client_load_pubkey(&c, path_in, &pk);
	CHECK((rs == 0) == (sk != NULL));
	if (opts & 1)
		CHECK(rs < 0); /* others may read it */
	if (rs == 0) {
		CHECK(rp == 0);
		jose_seckey_public(sk, &from_sk);
		CHECK(memcmp(from_sk.x, pk.x, sizeof(pk.x)) == 0 &&
		      strcmp(from_sk.kid, pk.kid) == 0);
		CHECK(jose_seckey_to_jwk(sk, jwk, sizeof(jwk)) == 0);
		CHECK(jose_seckey_parse_jwk(jwk, strlen(jwk), &back_sk) == 0);
		jose_seckey_public(back_sk, &back);
		CHECK(memcmp(back.x, pk.x, sizeof(pk.x)) == 0);
		sodium_memzero(jwk, sizeof(jwk));
	}
	if (rp == 0) {
		char tp[JOSE_B64_32_BYTES];
		CHECK(jose_pubkey_to_jwk(&pk, jwk, sizeof(jwk)) == 0);
		CHECK(jose_pubkey_parse_jwk(jwk, strlen(jwk), &back) == 0);
		CHECK(memcmp(back.x, pk.x, sizeof(pk.x)) == 0 &&
		      strcmp(back.kid, pk.kid) == 0);
		CHECK(jose_thumbprint(&pk, tp) == 0 && strlen(tp) == 43);
	}
	jose_seckey_free(sk);
	jose_seckey_free(back_sk);
}

/* ---- mode 4: call --mandate ---------------------------------------------- */

static void fuzz_mandate_file(void)
{
	static const char htu[] = "http://127.0.0.1:8080/v1/transfers";
	const int64_t now = INT64_C(1800000000);
	struct mandate_dpop_opts o = {0};
	struct mandate_error err = {0};
	struct mandate_dpop d;
	struct client c;
	char *chain = NULL, *proof = NULL;
	size_t len = 0, plen = 0;

	client_init(&c, "fuzz_cli_delegate");
	if (load_chain(&c, path_in, &chain, &len) < 0)
		return;
	CHECK(len > 0 && len <= MANDATE_AUTHZ_BYTES_MAX &&
	      strlen(chain) == len);
	CHECK(strspn(chain, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
			    "yz0123456789-_.~") == len);
	proof = malloc(JOSE_TOKEN_BYTES_MAX + 1);
	CHECK(proof != NULL);
	CHECK(mandate_dpop_sign(keys[2], "fuzz-jti", "POST", htu, now, chain,
				len, proof, JOSE_TOKEN_BYTES_MAX + 1,
				&plen) == 0);
	o.now = now;
	o.method = "POST";
	o.host = "127.0.0.1:8080";
	o.path = "/v1/transfers";
	o.access_token = chain;
	o.access_token_len = len;
	CHECK(mandate_dpop_verify(proof, plen, &o, &d, &err) == 0);
	free(proof);
	free(chain);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	unsigned mode, opts;

	if (size < 1 || size > INPUT_BYTES_MAX)
		return 0;
	init();
	mode = data[0] % 5;
	opts = data[0] / 5;
	write_file(path_in, data + 1, size - 1,
		   mode == 3 && (opts & 1) ? 0644 : 0600);
	switch (mode) {
	case 0: fuzz_inspect((const char *)data + 1, size - 1, opts); break;
	case 1: fuzz_verify(opts); break;
	case 2: fuzz_issue((const char *)data + 1, size - 1, opts); break;
	case 3: fuzz_keyfile(opts); break;
	default: fuzz_mandate_file(); break;
	}
	fflush(stdout);
	return 0;
}
