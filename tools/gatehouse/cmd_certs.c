/*
 * gatehouse certs: list, check, generate and install the certificate
 * files of the directory HAProxy ("crt <dir>") and gatehouse-mailproxy
 * ([mailproxy] certs) share. sync and watch live in cmd_certs_sync.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "cli.h"
#include "cmd_certs.h"

#define CERTS_MAX_CHAIN 16
#define CERTS_MAX_FILES 4096
#define CERTS_FILE_MAX  (1024 * 1024)   /* larger PEM files are refused */

static int run(struct cli *c, int argc, char **argv);

const struct cli_cmd cmd_certs = {
	"certs",
	"list, check, generate, install and push TLS certificates",
	run,
	"NAME\n"
	"    gatehouse certs - manage the certificates directory\n"
	"\n"
	"SYNOPSIS\n"
	"    gatehouse [-c FILE] [--json] certs list [DIR]\n"
	"    gatehouse [--json] certs check FILE\n"
	"    gatehouse certs selfsigned NAME... [-o FILE] [--days N]\n"
	"    gatehouse [-c FILE] [--json] certs install FILE [DIR]\n"
	"    gatehouse [-c FILE] [--json] certs sync --haproxy SOCKET [DIR]\n"
	"    gatehouse [-c FILE] [--json] certs watch --haproxy SOCKET [DIR]\n"
	"\n"
	"DESCRIPTION\n"
	"    DIR defaults to [mailproxy] certs. Each file holds a certificate,\n"
	"    its chain (each certificate signed by the next) and the key (or the\n"
	"    key in FILE.key), as HAProxy's \"crt <dir>\" reads it; dotfiles and\n"
	"    .key, .issuer, .ocsp, .sctl files are not certificates. The\n"
	"    alphabetically first good file is the default certificate (served\n"
	"    when no name matches).\n"
	"\n"
	"    list        each file's names, expiry (not after), issuer, and which\n"
	"                is the default; broken files with the reason.\n"
	"                --json: {\"dir\",\"files\":[{\"file\",\"ok\",\"default\",\n"
	"                \"names\":[...],\"subject\",\"issuer\",\"not_after\",\n"
	"                \"serial\",\"sha1\",\"error\"}]}\n"
	"    check       checks FILE: PEM parses, key matches the certificate,\n"
	"                chain order, nothing expired or not yet valid, at least\n"
	"                one DNS name. --json: {\"file\",\"ok\",\"error\",\"names\"}\n"
	"    selfsigned  generates an EC P-256 key and a self-signed certificate\n"
	"                for NAME... (the first is the CN; all are SANs, IP\n"
	"                literals as IP SANs), valid --days N days (default 365),\n"
	"                written with the key as one PEM to FILE (mode 600,\n"
	"                atomically) or stdout.\n"
	"    install     checks FILE, then copies it into DIR under its own base\n"
	"                name atomically (temporary dotfile + rename); a bad file\n"
	"                is refused with the reason.\n"
	"    sync        compares DIR with HAProxy's certificates (\"show ssl\n"
	"                cert\" on its admin SOCKET) and pushes the differences\n"
	"                with the runtime API, without reload: new files (new,\n"
	"                set, commit ssl cert; add ssl crt-list DIR FILE), changed\n"
	"                files (set, commit), removed files (del ssl crt-list,\n"
	"                del ssl cert). Broken files are skipped with the reason.\n"
	"                DIR must be spelled exactly as in HAProxy's \"crt\" line.\n"
	"                The payload is sent without blank lines. A new file does\n"
	"                not become HAProxy's default certificate before a reload.\n"
	"                --json: {\"added\",\"updated\",\"removed\",\"unchanged\",\n"
	"                \"errors\":[{\"file\",\"error\"}]}\n"
	"    watch       runs sync once, then again ~200 ms after any change in\n"
	"                DIR (inotify) and every 60 s, in the foreground until\n"
	"                SIGTERM or SIGINT; one line (or JSON object) per sync\n"
	"                that changed something or failed.\n"
	"\n"
	"EXIT STATUS\n"
	"    0  done; check/install: the file is good; list: no broken file\n"
	"    1  check/install: the file is refused (the reason is printed);\n"
	"       list: some file is broken; sync: some file was skipped\n"
	"    1  also: the configuration is not valid, or it names no certs DIR\n"
	"    2  DIR or FILE unreadable, HAProxy unreachable or a runtime command\n"
	"       failed, or usage error\n",
};

/* Everything "list" and "check" report about one file. */
struct certinfo {
	int ok;
	char error[512];
	char names[2048];         /* JSON array text */
	char names_txt[1024];     /* comma-separated */
	char subject[512], issuer[512], not_after[64], serial[128], sha1[64];
};

/* Read every certificate of PEM file <path> into <out> (at most <max>).
 * Returns the count (0 when none), or -1 when unreadable. */
static int
read_chain(const char *path, X509 **out, int max)
{
	FILE *fp = fopen(path, "r");
	X509 *x;
	int n = 0;

	if (fp == NULL)
		return -1;
	while (n < max && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
		out[n++] = x;
	ERR_clear_error();
	fclose(fp);
	return n;
}

/* Free <n> certificates of <xs>. */
static void
free_chain(X509 **xs, int n)
{
	while (n-- > 0)
		X509_free(xs[n]);
}

/* Format <t> as "YYYY-MM-DDTHH:MM:SSZ" into <buf>. */
static void
asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(buf, len, "?");
		return;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One-line RFC 2253 form of <name> into <buf>. */
static void
name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/* Collect the DNS names (and IP SANs) of <x>; the CN when there is no
 * SAN. Fills names/names_txt of <ci>. Returns the count. */
static int
collect_names(X509 *x, struct certinfo *ci)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t jo = 0, to = 0;
	int i, n = 0;

	cli_buf_put(ci->names, sizeof(ci->names), &jo, "[");
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[256];

		if (g->type == GEN_DNS) {
			snprintf(one, sizeof(one), "%.*s", ASN1_STRING_length(g->d.dNSName),
			         (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD && (g->d.iPAddress->length == 4 ||
		                                   g->d.iPAddress->length == 16)) {
			inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6,
			          g->d.iPAddress->data, one, sizeof(one));
		} else {
			continue;
		}
		cli_buf_put(ci->names, sizeof(ci->names), &jo, n ? "," : "");
		cli_buf_json(ci->names, sizeof(ci->names), &jo, one);
		cli_buf_put(ci->names_txt, sizeof(ci->names_txt), &to, n ? "," : "");
		cli_buf_put(ci->names_txt, sizeof(ci->names_txt), &to, one);
		n++;
	}
	GENERAL_NAMES_free(gens);
	if (n == 0) {
		char cn[256];

		if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
		                              sizeof(cn)) > 0) {
			cli_buf_json(ci->names, sizeof(ci->names), &jo, cn);
			cli_buf_put(ci->names_txt, sizeof(ci->names_txt), &to, cn);
			n++;
		}
	}
	cli_buf_put(ci->names, sizeof(ci->names), &jo, "]");
	return n;
}

/* Fill <ci> for file <path>: details of the leaf and the check verdict. */
static void
inspect(const char *path, struct certinfo *ci)
{
	X509 *xs[CERTS_MAX_CHAIN];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	int n;

	memset(ci, 0, sizeof(*ci));
	snprintf(ci->names, sizeof(ci->names), "[]");
	n = read_chain(path, xs, CERTS_MAX_CHAIN);
	if (n > 0) {
		ASN1_INTEGER *sn = X509_get_serialNumber(xs[0]);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

		ci->names[0] = '\0';
		collect_names(xs[0], ci);
		name_str(X509_get_subject_name(xs[0]), ci->subject, sizeof(ci->subject));
		name_str(X509_get_issuer_name(xs[0]), ci->issuer, sizeof(ci->issuer));
		asn1_time_str(X509_get0_notAfter(xs[0]), ci->not_after, sizeof(ci->not_after));
		snprintf(ci->serial, sizeof(ci->serial), "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
		if (X509_digest(xs[0], EVP_sha1(), md, &mdlen) == 1)
			for (i = 0; i < mdlen && 2 * i + 2 < sizeof(ci->sha1); i++)
				snprintf(ci->sha1 + 2 * i, 3, "%02X", md[i]);
		free_chain(xs, n);
	}
	ci->ok = cmd_certs_check_file(path, ci->error, sizeof(ci->error)) == 0;
}

/*
 * Check <path> as "certs check" does; see cmd_certs.h.
 */
int
cmd_certs_check_file(const char *path, char *reason, size_t len)
{
	X509 *xs[CERTS_MAX_CHAIN];
	struct certinfo ci;
	struct stat st;
	int n, i;

	if (stat(path, &st) < 0) {
		snprintf(reason, len, "cannot read: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CERTS_FILE_MAX) {
		snprintf(reason, len, "not a regular file of at most %d bytes", CERTS_FILE_MAX);
		return -1;
	}
	n = read_chain(path, xs, CERTS_MAX_CHAIN);
	if (n < 0) {
		snprintf(reason, len, "cannot read: %s", strerror(errno));
		return -1;
	}
	if (n == 0) {
		snprintf(reason, len, "no PEM certificate in the file");
		return -1;
	}
	for (i = 0; i < n; i++) {
		char subj[256];

		name_str(X509_get_subject_name(xs[i]), subj, sizeof(subj));
		if (X509_cmp_current_time(X509_get0_notAfter(xs[i])) < 0) {
			char when[64];

			asn1_time_str(X509_get0_notAfter(xs[i]), when, sizeof(when));
			snprintf(reason, len, "certificate %d (%s) expired on %s", i + 1, subj, when);
			goto bad;
		}
		if (X509_cmp_current_time(X509_get0_notBefore(xs[i])) > 0) {
			snprintf(reason, len, "certificate %d (%s) is not valid yet", i + 1, subj);
			goto bad;
		}
		if (i + 1 < n) {
			EVP_PKEY *pk = X509_get0_pubkey(xs[i + 1]);
			char isubj[256];

			name_str(X509_get_subject_name(xs[i + 1]), isubj, sizeof(isubj));
			if (X509_check_issued(xs[i + 1], xs[i]) != X509_V_OK || pk == NULL ||
			    X509_verify(xs[i], pk) != 1) {
				ERR_clear_error();
				snprintf(reason, len, "chain order: certificate %d (%s) is not signed "
				         "by the next one, certificate %d (%s)", i + 1, subj, i + 2, isubj);
				goto bad;
			}
		}
	}
	memset(&ci, 0, sizeof(ci));
	if (collect_names(xs[0], &ci) == 0) {
		snprintf(reason, len, "the certificate names no host (no SAN, no CN)");
		goto bad;
	}
	free_chain(xs, n);
	/* key present and matching, and everything the daemons need */
	return certs_check_file(path, reason, len) == 0 ? 0 : -1;
bad:
	free_chain(xs, n);
	return -1;
}

/* qsort order of file names. */
static int
by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Point <*dir> at the certificate directory from the configuration.
 * Returns CLI_OK, or the exit status (the error printed).
 */
static int
default_dir(struct cli *c, const char **dir)
{
	int rc = cli_load_config(c, 0);

	if (rc != CLI_OK)
		return rc;
	if (c->cfg->mailproxy.certs[0] == '\0') {
		cli_error("certs: no DIR given and [mailproxy] certs is not set");
		return CLI_NO;
	}
	*dir = c->cfg->mailproxy.certs;
	return CLI_OK;
}

static int
do_list(struct cli *c, const char *dir)
{
	DIR *d;
	struct dirent *de;
	char *names[CERTS_MAX_FILES];
	int n = 0, i, bad = 0, def = -1, shown = 0;

	d = opendir(dir);
	if (d == NULL) {
		cli_error("certs list: %s: %s", dir, strerror(errno));
		return CLI_TEMP;
	}
	while ((de = readdir(d)) != NULL && n < CERTS_MAX_FILES) {
		if (!certs_is_cert_name(de->d_name))
			continue;
		names[n] = strdup(de->d_name);
		if (names[n] != NULL)
			n++;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), by_str);
	if (c->json) {
		fputs("{\"dir\":", stdout);
		cli_json_str(stdout, dir);
		fputs(",\"files\":[", stdout);
	}
	for (i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct certinfo ci;
		struct stat st;
		int r = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

		if (r < 0 || (size_t)r >= sizeof(path) || stat(path, &st) < 0 ||
		    !S_ISREG(st.st_mode)) {
			free(names[i]);
			names[i] = NULL;
			continue;
		}
		inspect(path, &ci);
		if (ci.ok && def < 0)
			def = i;
		bad += !ci.ok;
		if (c->json) {
			fputs(shown ? ",{\"file\":" : "{\"file\":", stdout);
			cli_json_str(stdout, names[i]);
			printf(",\"ok\":%s,\"default\":%s,\"names\":%s", ci.ok ? "true" : "false",
			       def == i ? "true" : "false", ci.names);
			fputs(",\"subject\":", stdout);
			cli_json_str(stdout, ci.subject);
			fputs(",\"issuer\":", stdout);
			cli_json_str(stdout, ci.issuer);
			fputs(",\"not_after\":", stdout);
			cli_json_str(stdout, ci.not_after);
			fputs(",\"serial\":", stdout);
			cli_json_str(stdout, ci.serial);
			fputs(",\"sha1\":", stdout);
			cli_json_str(stdout, ci.sha1);
			if (!ci.ok) {
				fputs(",\"error\":", stdout);
				cli_json_str(stdout, ci.error);
			}
			fputc('}', stdout);
		} else {
			printf("%s%s\n", names[i], def == i ? "  (default)" : "");
			printf("    names      %s\n", ci.names_txt);
			printf("    not after  %s\n", ci.not_after);
			printf("    issuer     %s\n", ci.issuer);
			if (!ci.ok)
				printf("    BROKEN     %s\n", ci.error);
		}
		shown++;
		free(names[i]);
	}
	if (c->json)
		fputs("]}\n", stdout);
	return bad ? CLI_NO : CLI_OK;
}

static int
do_check(struct cli *c, const char *path)
{
	struct certinfo ci;

	inspect(path, &ci);
	if (c->json) {
		fputs("{\"file\":", stdout);
		cli_json_str(stdout, path);
		printf(",\"ok\":%s,\"names\":%s,\"not_after\":", ci.ok ? "true" : "false", ci.names);
		cli_json_str(stdout, ci.not_after);
		if (!ci.ok) {
			fputs(",\"error\":", stdout);
			cli_json_str(stdout, ci.error);
		}
		fputs("}\n", stdout);
	} else if (ci.ok) {
		printf("%s: ok (%s; not after %s)\n", path, ci.names_txt, ci.not_after);
	} else {
		printf("%s: refused: %s\n", path, ci.error);
	}
	return ci.ok ? CLI_OK : CLI_NO;
}

/* Write <len> bytes of <data> to <dst> atomically (dotfile + rename),
 * mode <mode>. Returns 0 or -1 with the reason in <err>. */
static int
write_file_atomic(const char *dst, const char *data, size_t len, mode_t mode, char *err,
                  size_t errlen)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(dst, '/');
	int fd, r;

	if (slash != NULL)
		r = snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp.%ld", (int)(slash - dst), dst,
		             slash + 1, (long)getpid());
	else
		r = snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", dst, (long)getpid());
	if (r < 0 || (size_t)r >= sizeof(tmp)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, dst) < 0) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Read all of <path> (at most CERTS_FILE_MAX). Returns a malloc'ed buffer
 * (caller frees) with its length in *<len>, or NULL. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = malloc(CERTS_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, CERTS_FILE_MAX + 1, fp);
	fclose(fp);
	if (n > CERTS_FILE_MAX) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Copy <file>.key to <dst>.key atomically. Returns 0, or -1 with <err>. */
static int
install_key(const char *file, const char *dst, char *err, size_t errlen)
{
	char src[PATH_MAX], out[PATH_MAX];
	char *data;
	size_t len;
	int r;

	if (snprintf(src, sizeof(src), "%s.key", file) >= (int)sizeof(src) ||
	    snprintf(out, sizeof(out), "%s.key", dst) >= (int)sizeof(out)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if ((data = slurp(src, &len)) == NULL) {
		snprintf(err, errlen, "%s: cannot read it", src);
		return -1;
	}
	r = write_file_atomic(out, data, len, 0600, err, errlen);
	explicit_bzero(data, len);
	free(data);
	return r;
}

static int
do_install(struct cli *c, const char *file, const char *dir)
{
	char reason[512], dst[PATH_MAX], err[PATH_MAX + 128];
	const char *base = strrchr(file, '/');
	char *data;
	size_t len;
	int r;

	base = base != NULL ? base + 1 : file;
	if (!certs_is_cert_name(base)) {
		snprintf(reason, sizeof(reason), "the name \"%s\" would not be loaded as a "
		         "certificate (dotfile or .key/.issuer/.ocsp/.sctl)", base);
		goto refuse;
	}
	if (cmd_certs_check_file(file, reason, sizeof(reason)) < 0)
		goto refuse;
	r = snprintf(dst, sizeof(dst), "%s/%s", dir, base);
	if (r < 0 || (size_t)r >= sizeof(dst)) {
		cli_error("certs install: path too long");
		return CLI_TEMP;
	}
	data = slurp(file, &len);
	if (data == NULL) {
		cli_error("certs install: %s: cannot read it", file);
		return CLI_TEMP;
	}
	/* the check accepted a key in FILE.key: it goes too, and first, so
	 * that no watcher ever sees the certificate without its key */
	if (memmem(data, len, "PRIVATE KEY-----", 16) == NULL &&
	    install_key(file, dst, err, sizeof(err)) < 0) {
		free(data);
		cli_error("certs install: %s", err);
		return CLI_TEMP;
	}
	if (write_file_atomic(dst, data, len, 0600, err, sizeof(err)) < 0) {
		free(data);
		cli_error("certs install: %s", err);
		return CLI_TEMP;
	}
	free(data);
	if (c->json) {
		fputs("{\"file\":", stdout);
		cli_json_str(stdout, file);
		fputs(",\"ok\":true,\"installed\":", stdout);
		cli_json_str(stdout, dst);
		fputs("}\n", stdout);
	} else {
		printf("installed %s\n", dst);
	}
	return CLI_OK;
refuse:
	if (c->json) {
		fputs("{\"file\":", stdout);
		cli_json_str(stdout, file);
		fputs(",\"ok\":false,\"error\":", stdout);
		cli_json_str(stdout, reason);
		fputs("}\n", stdout);
	}
	cli_error("certs install: %s refused: %s", file, reason);
	return CLI_NO;
}

/* Add extension <nid> with value <val> to <x> (issuer = subject). */
static int
add_ext(X509 *x, int nid, const char *val)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
	if (ex == NULL)
		return -1;
	ok = X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

static int
do_selfsigned(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	const char *names[64];
	char san[4096], err[PATH_MAX + 128];
	size_t so = 0;
	long days = 365;
	int i, n = 0, rc = CLI_TEMP;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *data;
	long dlen;

	(void)c;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			char *end;

			days = strtol(argv[++i], &end, 10);
			if (*end != '\0' || days < 1 || days > 36500)
				return cli_usage(&cmd_certs, "--days needs 1 to 36500");
		} else if (argv[i][0] == '-') {
			return cli_usage(&cmd_certs, "unknown option for selfsigned");
		} else if (n < 64) {
			names[n++] = argv[i];
		}
	}
	if (n == 0)
		return cli_usage(&cmd_certs, "selfsigned needs NAME...");
	for (i = 0; i < n; i++) {
		unsigned char ipbuf[16];
		int isip = inet_pton(AF_INET, names[i], ipbuf) == 1 ||
		           inet_pton(AF_INET6, names[i], ipbuf) == 1;

		if (strlen(names[i]) > 253 || strpbrk(names[i], ", \t\r\n") != NULL)
			return cli_usage(&cmd_certs, "a NAME is not a host name");
		cli_buf_put(san, sizeof(san), &so, i ? "," : "");
		cli_buf_put(san, sizeof(san), &so, isip ? "IP:" : "DNS:");
		cli_buf_put(san, sizeof(san), &so, names[i]);
	}
	key = EVP_EC_gen("P-256");
	x = X509_new();
	bn = BN_new();
	if (key == NULL || x == NULL || bn == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto done;
	serial[0] &= 0x7f;
	if (BN_bin2bn(serial, sizeof(serial), bn) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto done;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                           (const unsigned char *)names[0], -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (add_ext(x, NID_subject_alt_name, san) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    X509_sign(x, key, EVP_sha256()) == 0)
		goto done;
	b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_X509(b, x) != 1 ||
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
		goto done;
	dlen = BIO_get_mem_data(b, &data);
	if (out == NULL) {
		fwrite(data, 1, (size_t)dlen, stdout);
		rc = CLI_OK;
	} else if (write_file_atomic(out, data, (size_t)dlen, 0600, err, sizeof(err)) < 0) {
		cli_error("certs selfsigned: %s", err);
	} else {
		rc = CLI_OK;
	}
done:
	if (rc != CLI_OK && out != NULL && b == NULL)
		cli_error("certs selfsigned: cannot generate the certificate");
	BIO_free(b);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static int
run(struct cli *c, int argc, char **argv)
{
	const char *act;
	const char *dir;
	int rc;

	if (argc < 2 || cli_is_help(argv[1]))
		return argc < 2 ? cli_usage(&cmd_certs, "an action is needed") : cli_help(&cmd_certs);
	act = argv[1];
	for (int i = 2; i < argc; i++)
		if (cli_is_help(argv[i]))
			return cli_help(&cmd_certs);
	if (strcmp(act, "list") == 0) {
		if (argc > 3)
			return cli_usage(&cmd_certs, "list takes at most a DIR");
		if (argc == 3)
			dir = argv[2];
		else if ((rc = default_dir(c, &dir)) != CLI_OK)
			return rc;
		return do_list(c, dir);
	}
	if (strcmp(act, "check") == 0) {
		if (argc != 3)
			return cli_usage(&cmd_certs, "check needs one FILE");
		return do_check(c, argv[2]);
	}
	if (strcmp(act, "install") == 0) {
		if (argc != 3 && argc != 4)
			return cli_usage(&cmd_certs, "install needs FILE [DIR]");
		if (argc == 4)
			dir = argv[3];
		else if ((rc = default_dir(c, &dir)) != CLI_OK)
			return rc;
		return do_install(c, argv[2], dir);
	}
	if (strcmp(act, "selfsigned") == 0)
		return do_selfsigned(c, argc - 2, argv + 2);
	if (strcmp(act, "sync") == 0)
		return cmd_certs_sync_run(c, argc - 1, argv + 1, 0);
	if (strcmp(act, "watch") == 0)
		return cmd_certs_sync_run(c, argc - 1, argv + 1, 1);
	return cli_usage(&cmd_certs, "unknown action");
}
