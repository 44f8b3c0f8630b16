/*
 * gatehouse certs: list, check, generate and install the certificate
 * files of the directory HAProxy ("crt <dir>") and gatehouse-mailproxy
 * ([mailproxy] certs) share. sync and watch live in cmd_certs_sync.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "certs_inspect.h"
#include "cli.h"
#include "cmd_certs.h"

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
	"    when no name matches, and to clients sending no SNI). Every verdict\n"
	"    and name below comes from the daemons' own certificate store: a\n"
	"    file is served when its PEM parses, its key matches and its leaf\n"
	"    certificate is valid now; it is found by its DNS SANs (its CN when\n"
	"    it has none), never by IP address SANs. Problems the daemons serve\n"
	"    anyway (chain order, an expired chain certificate, no DNS name)\n"
	"    are warnings.\n"
	"\n"
	"    list        each file's names (those another, earlier file serves\n"
	"                are \"shadowed\"), IP SANs, expiry (not after), issuer,\n"
	"                warnings, and which is the default; broken files with\n"
	"                the reason. --json: {\"dir\",\"files\":[{\"file\",\"ok\",\n"
	"                \"default\",\"names\":[...],\"shadowed\":[{\"name\",\"by\"}],\n"
	"                \"ip_sans\":[...],\"warnings\":[...],\"subject\",\"issuer\",\n"
	"                \"not_after\",\"serial\",\"sha1\",\"error\"}]}\n"
	"    check       checks FILE as the daemons load it, and prints its\n"
	"                names and warnings. --json: {\"file\",\"ok\",\"error\",\n"
	"                \"names\",\"ip_sans\",\"warnings\",\"not_after\"}\n"
	"    selfsigned  generates an EC P-256 key and a self-signed certificate\n"
	"                for NAME... (the first is the CN; all are SANs, IP\n"
	"                literals as IP SANs), valid --days N days (default 365),\n"
	"                written with the key as one PEM to FILE (mode 600,\n"
	"                atomically) or stdout.\n"
	"    install     checks FILE, then copies it into DIR under its own base\n"
	"                name atomically (temporary dotfile + rename); a file the\n"
	"                daemons would not serve is refused with the reason;\n"
	"                warnings are printed.\n"
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
	"    0  done; check/install: the file is served (perhaps with warnings);\n"
	"       list: no broken file\n"
	"    1  check/install: the file is refused (the reason is printed);\n"
	"       list: some file is broken; sync: some file was skipped\n"
	"    1  also: the configuration is not valid, or it names no certs DIR\n"
	"    2  DIR or FILE unreadable, HAProxy unreachable or a runtime command\n"
	"       failed, or usage error\n",
};

/* Print <l> as a JSON array of strings. */
static void
json_strs(const struct certs_strs *l)
{
	size_t i;

	fputc('[', stdout);
	for (i = 0; i < l->n; i++) {
		if (i)
			fputc(',', stdout);
		cli_json_str(stdout, l->v[i]);
	}
	fputc(']', stdout);
}

/* Print <l> comma-separated ("-" when empty). */
static void
txt_strs(const struct certs_strs *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		printf("%s%s", i ? "," : "", l->v[i]);
	if (l->n == 0)
		fputc('-', stdout);
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

/* Print one file of "list" from <ci>; <first> tells whether it leads. */
static void
list_one(const struct cli *c, const char *file, const struct certs_info *ci, int first)
{
	size_t i;

	if (c->json) {
		fputs(first ? "{\"file\":" : ",{\"file\":", stdout);
		cli_json_str(stdout, file);
		printf(",\"ok\":%s,\"default\":%s,\"names\":", ci->ok ? "true" : "false",
		       ci->is_default ? "true" : "false");
		json_strs(&ci->names);
		fputs(",\"shadowed\":[", stdout);
		for (i = 0; i < ci->shadowed.n; i++) {
			fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
			cli_json_str(stdout, ci->shadowed.v[i]);
			fputs(",\"by\":", stdout);
			cli_json_str(stdout, ci->shadowed_by.v[i]);
			fputc('}', stdout);
		}
		fputs("],\"ip_sans\":", stdout);
		json_strs(&ci->ip_sans);
		fputs(",\"warnings\":", stdout);
		json_strs(&ci->warnings);
		fputs(",\"subject\":", stdout);
		cli_json_str(stdout, ci->subject);
		fputs(",\"issuer\":", stdout);
		cli_json_str(stdout, ci->issuer);
		fputs(",\"not_after\":", stdout);
		cli_json_str(stdout, ci->not_after);
		fputs(",\"serial\":", stdout);
		cli_json_str(stdout, ci->serial);
		fputs(",\"sha1\":", stdout);
		cli_json_str(stdout, ci->sha1);
		if (!ci->ok) {
			fputs(",\"error\":", stdout);
			cli_json_str(stdout, ci->error);
		}
		fputc('}', stdout);
		return;
	}
	printf("%s%s\n", file, ci->is_default ? "  (default)" : "");
	fputs("    names      ", stdout);
	txt_strs(&ci->names);
	fputc('\n', stdout);
	for (i = 0; i < ci->shadowed.n; i++)
		printf("    shadowed   %s (served by %s)\n", ci->shadowed.v[i], ci->shadowed_by.v[i]);
	if (ci->ip_sans.n > 0) {
		fputs("    ip sans    ", stdout);
		txt_strs(&ci->ip_sans);
		fputc('\n', stdout);
	}
	printf("    not after  %s\n", ci->not_after[0] ? ci->not_after : "?");
	printf("    issuer     %s\n", ci->issuer);
	for (i = 0; i < ci->warnings.n; i++)
		printf("    warning    %s\n", ci->warnings.v[i]);
	if (!ci->ok)
		printf("    BROKEN     %s\n", ci->error);
}

static int
do_list(struct cli *c, const char *dir)
{
	struct logger quiet = { .level = LOG_ERR, .ident = "gatehouse" };
	struct certs_opts opts = { .log = &quiet };
	struct certs *store;
	char **names, err[512];
	long n, i;
	int bad = 0, shown = 0, rc = CLI_OK;

	/* the store the daemons build: it decides the default and who serves a name */
	store = certs_load(dir, &opts, err, sizeof(err));
	n = store != NULL ? certs_dir_files(dir, &names) : -1;
	if (n < 0) {
		cli_error("certs list: %s", store != NULL ? strerror(errno) : err);
		certs_unref(store);
		return CLI_TEMP;
	}
	if (c->json) {
		fputs("{\"dir\":", stdout);
		cli_json_str(stdout, dir);
		fputs(",\"files\":[", stdout);
	}
	for (i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct certs_info ci;
		int r = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

		if (r < 0 || (size_t)r >= sizeof(path))
			continue;
		if (certs_inspect(path, store, &ci) < 0) {
			cli_error("certs list: out of memory");
			rc = CLI_TEMP;
			break;
		}
		bad += !ci.ok;
		list_one(c, names[i], &ci, shown++ == 0);
		certs_inspect_free(&ci);
	}
	if (c->json)
		fputs("]}\n", stdout);
	certs_dir_files_free(names, n);
	certs_unref(store);
	if (rc != CLI_OK)
		return rc;
	return bad ? CLI_NO : CLI_OK;
}

static int
do_check(struct cli *c, const char *path)
{
	struct certs_info ci;
	size_t i;
	int ok;

	if (certs_inspect(path, NULL, &ci) < 0) {
		cli_error("certs check: out of memory");
		return CLI_TEMP;
	}
	if (c->json) {
		fputs("{\"file\":", stdout);
		cli_json_str(stdout, path);
		printf(",\"ok\":%s,\"names\":", ci.ok ? "true" : "false");
		json_strs(&ci.names);
		fputs(",\"ip_sans\":", stdout);
		json_strs(&ci.ip_sans);
		fputs(",\"warnings\":", stdout);
		json_strs(&ci.warnings);
		fputs(",\"not_after\":", stdout);
		cli_json_str(stdout, ci.not_after);
		if (!ci.ok) {
			fputs(",\"error\":", stdout);
			cli_json_str(stdout, ci.error);
		}
		fputs("}\n", stdout);
	} else if (ci.ok) {
		printf("%s: ok (", path);
		txt_strs(&ci.names);
		printf("; not after %s)\n", ci.not_after);
		for (i = 0; i < ci.warnings.n; i++)
			printf("%s: warning: %s\n", path, ci.warnings.v[i]);
	} else {
		printf("%s: refused: %s\n", path, ci.error);
	}
	ok = ci.ok;
	certs_inspect_free(&ci);
	return ok ? CLI_OK : CLI_NO;
}

/* Write <len> bytes of <data> to <dst> atomically (dotfile + rename),
 * mode <mode>. Returns 0 or -1 with the reason in <err>. */
/*
 * Give the file being written on <fd> (at <path>) to the group of its
 * directory, readable by it (0640), when that directory is kept for its
 * group (group may enter and list it, others may not): the packaged
 * /etc/gatehouse/certs is 0750 root:gatehouse, and the mail proxy runs as
 * gatehouse. Otherwise the file stays as created (0600).
 */
static int
share_with_dir_group(int fd, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) < 0 || !(st.st_mode & S_IXGRP) || !(st.st_mode & S_IRGRP) ||
	    (st.st_mode & S_IRWXO))
		return 0;
	if (fchown(fd, (uid_t)-1, st.st_gid) < 0 || fchmod(fd, 0640) < 0)
		return -1;
	return 0;
}

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
	if (share_with_dir_group(fd, tmp) < 0 ||
	    write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
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
	struct certs_info ci;
	char *data;
	size_t len, i;
	int r;

	base = base != NULL ? base + 1 : file;
	if (!certs_is_cert_name(base)) {
		snprintf(reason, sizeof(reason), "the name \"%s\" would not be loaded as a "
		         "certificate (dotfile or .key/.issuer/.ocsp/.sctl)", base);
		goto refuse;
	}
	if (certs_inspect(file, NULL, &ci) < 0) {
		cli_error("certs install: out of memory");
		return CLI_TEMP;
	}
	snprintf(reason, sizeof(reason), "%s", ci.error);
	r = ci.ok;
	for (i = 0; r && i < ci.warnings.n; i++)
		cli_error("certs install: %s: warning: %s", file, ci.warnings.v[i]);
	certs_inspect_free(&ci);
	if (!r)
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
