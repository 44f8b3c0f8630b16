/*
 * gatehouse certs sync / watch: make HAProxy serve what the certificates
 * directory holds, through its runtime API on the admin socket (no
 * reload): new/set/commit ssl cert and add ssl crt-list for new files,
 * set/commit for changed ones, del ssl crt-list and del ssl cert for
 * removed ones. watch repeats this on inotify events.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "certs.h"
#include "certs_inspect.h"
#include "cmd_certs.h"
#include "hapi.h"
#include "health.h"

#define SYNC_ANSWER_MAX   (256 * 1024)  /* longest answer read */
#define SYNC_PAYLOAD_MAX  (1024 * 1024)
#define SYNC_MAX_FILES    4096
#define WATCH_DEBOUNCE_MS 200
#define WATCH_RESYNC_MS   60000

/* What one sync did. */
struct sync_report {
	char added[4096], updated[4096], removed[4096], errors[8192]; /* JSON items */
	size_t ao, uo, ro, eo;
	int nadd, nupd, nrem, nerr, unchanged, fatal;
	char fatal_msg[512];
};

/* Append <s> as a JSON string (with a leading comma unless first). */
static void
put_json(char *buf, size_t len, size_t *off, const char *s)
{
	if (*off)
		cli_buf_put(buf, len, off, ",");
	cli_buf_json(buf, len, off, s);
}

/* Record an error about <file>. */
static void
report_error(struct sync_report *r, const char *file, const char *why)
{
	cli_buf_put(r->errors, sizeof(r->errors), &r->eo, r->eo ? ",{\"file\":" : "{\"file\":");
	{
		size_t o = 0;
		char tmp[1024];

		tmp[0] = '\0';
		put_json(tmp, sizeof(tmp), &o, file);
		cli_buf_put(r->errors, sizeof(r->errors), &r->eo, tmp);
		o = 0;
		tmp[0] = '\0';
		put_json(tmp, sizeof(tmp), &o, why);
		cli_buf_put(r->errors, sizeof(r->errors), &r->eo, ",\"error\":");
		cli_buf_put(r->errors, sizeof(r->errors), &r->eo, tmp);
	}
	cli_buf_put(r->errors, sizeof(r->errors), &r->eo, "}");
	r->nerr++;
}

/* Run <cmd> and require <expect> in the answer. Returns 0, or -1 with the
 * answer's first line in <why>. */
static int
api(const char *sock, const char *cmd, const char *payload, const char *expect, char *why,
    size_t wlen)
{
	char *ans = malloc(SYNC_ANSWER_MAX);
	int rc = -1;

	if (ans == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	if (hapi_cmd(sock, cmd, payload, ans, SYNC_ANSWER_MAX) < 0) {
		snprintf(why, wlen, "%s", ans);
	} else if (strstr(ans, expect) == NULL) {
		ans[strcspn(ans, "\n")] = '\0';
		snprintf(why, wlen, "\"%.80s\": %s", cmd, ans[0] ? ans : "(empty answer)");
	} else {
		rc = 0;
	}
	free(ans);
	return rc;
}

/* Append file <path> to <buf> without blank lines (HAProxy ends a payload
 * at an empty line) and without CRs. Returns 0 or -1. */
static int
add_payload(const char *path, char *buf, size_t len, size_t *off)
{
	FILE *fp = fopen(path, "r");
	char line[4096];

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n == 0 || strspn(line, " \t") == n)
			continue;
		if (*off + n + 2 > len) {
			fclose(fp);
			return -1;
		}
		memcpy(buf + *off, line, n);
		*off += n;
		buf[(*off)++] = '\n';
		buf[*off] = '\0';
	}
	fclose(fp);
	return 0;
}

/* Build the payload of <path> (and <path>.key when the file has no key).
 * Returns a malloc'ed string or NULL. */
static char *
payload_of(const char *path)
{
	char *buf = malloc(SYNC_PAYLOAD_MAX);
	char keyp[PATH_MAX];
	size_t off = 0;

	if (buf == NULL)
		return NULL;
	buf[0] = '\0';
	if (add_payload(path, buf, SYNC_PAYLOAD_MAX, &off) < 0) {
		free(buf);
		return NULL;
	}
	if (strstr(buf, "PRIVATE KEY-----") == NULL &&
	    snprintf(keyp, sizeof(keyp), "%s.key", path) < (int)sizeof(keyp) &&
	    access(keyp, R_OK) == 0 && add_payload(keyp, buf, SYNC_PAYLOAD_MAX, &off) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The fingerprint HAProxy reports for <path>, into <hex>. Returns 0 or -1. */
static int
haproxy_sha1(const char *sock, const char *path, char *hex, size_t len)
{
	char cmd[PATH_MAX + 32], *ans = malloc(SYNC_ANSWER_MAX), *p;
	int rc = -1;

	if (ans == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "show ssl cert %s", path);
	if (hapi_cmd(sock, cmd, NULL, ans, SYNC_ANSWER_MAX) == 0 &&
	    (p = strstr(ans, "SHA1 FingerPrint: ")) != NULL) {
		p += strlen("SHA1 FingerPrint: ");
		snprintf(hex, len, "%.*s", (int)strcspn(p, "\r\n"), p);
		rc = 0;
	}
	free(ans);
	return rc;
}

/* Push <path> (new when <isnew>) to HAProxy's crt-list <dir>. Returns 0 or
 * -1 with the reason in <why>. */
static int
push(const char *sock, const char *dir, const char *path, int isnew, char *why, size_t wlen)
{
	char cmd[2 * PATH_MAX + 64];
	char *pl = payload_of(path);

	if (pl == NULL) {
		snprintf(why, wlen, "cannot read the file (or larger than %d bytes)",
		         SYNC_PAYLOAD_MAX);
		return -1;
	}
	if (isnew) {
		snprintf(cmd, sizeof(cmd), "new ssl cert %s", path);
		if (api(sock, cmd, NULL, "New empty", why, wlen) < 0)
			goto fail;
	}
	snprintf(cmd, sizeof(cmd), "set ssl cert %s", path);
	if (api(sock, cmd, pl, "Transaction", why, wlen) < 0) {
		char ignore[256];

		snprintf(cmd, sizeof(cmd), "abort ssl cert %s", path);
		api(sock, cmd, NULL, "", ignore, sizeof(ignore));
		goto fail_new;
	}
	snprintf(cmd, sizeof(cmd), "commit ssl cert %s", path);
	if (api(sock, cmd, NULL, "Success", why, wlen) < 0)
		goto fail_new;
	if (isnew) {
		snprintf(cmd, sizeof(cmd), "add ssl crt-list %s %s", dir, path);
		if (api(sock, cmd, NULL, "Success", why, wlen) < 0)
			goto fail_new;
	}
	free(pl);
	return 0;
fail_new:
	if (isnew) {
		char ignore[256];

		/* leave no unused store behind */
		snprintf(cmd, sizeof(cmd), "del ssl cert %s", path);
		api(sock, cmd, NULL, "", ignore, sizeof(ignore));
	}
fail:
	free(pl);
	return -1;
}

/* Remove <path> from crt-list <dir> and HAProxy. Returns 0 or -1. */
static int
drop(const char *sock, const char *dir, const char *path, char *why, size_t wlen)
{
	char cmd[2 * PATH_MAX + 64];

	snprintf(cmd, sizeof(cmd), "del ssl crt-list %s %s", dir, path);
	if (api(sock, cmd, NULL, "deleted", why, wlen) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "del ssl cert %s", path);
	return api(sock, cmd, NULL, "deleted", why, wlen);
}

/* One sync of <dir> (no trailing slash) with HAProxy at <sock>. */
static void
sync_once(const char *sock, const char *dir, struct sync_report *r)
{
	char *ans = malloc(SYNC_ANSWER_MAX), *line, *save = NULL;
	char *have[SYNC_MAX_FILES], **names = NULL;
	int nhave = 0, i;
	size_t dl = strlen(dir);
	long nnames, k;

	memset(r, 0, sizeof(*r));
	if (ans == NULL) {
		r->fatal = 1;
		snprintf(r->fatal_msg, sizeof(r->fatal_msg), "out of memory");
		return;
	}
	if (hapi_cmd(sock, "show ssl cert", NULL, ans, SYNC_ANSWER_MAX) < 0) {
		r->fatal = 1;
		snprintf(r->fatal_msg, sizeof(r->fatal_msg), "%s", ans);
		free(ans);
		return;
	}
	/* HAProxy's certificates from this directory */
	for (line = strtok_r(ans, "\n", &save); line != NULL && nhave < SYNC_MAX_FILES;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '*' || line[0] == '\0')
			continue;
		if (strncmp(line, dir, dl) == 0 && line[dl] == '/' &&
		    strchr(line + dl + 1, '/') == NULL)
			have[nhave++] = strdup(line + dl + 1);
	}
	free(ans);
	nnames = certs_dir_files(dir, &names);
	if (nnames < 0) {
		r->fatal = 1;
		snprintf(r->fatal_msg, sizeof(r->fatal_msg), "%s: %s", dir, strerror(errno));
		goto out;
	}
	for (k = 0; k < nnames; k++) {
		const char *name = names[k];
		char path[PATH_MAX], why[512], b[128];
		struct certs_info ci;
		int known = -1, same;

		if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
			continue;
		for (i = 0; i < nhave; i++)
			if (have[i] != NULL && strcmp(have[i], name) == 0)
				known = i;
		if (known >= 0) {
			free(have[known]);
			have[known] = NULL;   /* present on both sides */
		}
		/* push only what the mail proxy serves too, by the same rules */
		if (certs_inspect(path, NULL, &ci) < 0 || !ci.ok) {
			report_error(r, name, ci.error);
			certs_inspect_free(&ci);
			continue;
		}
		same = known >= 0 && haproxy_sha1(sock, path, b, sizeof(b)) == 0 &&
		       strcasecmp(ci.sha1, b) == 0;
		certs_inspect_free(&ci);
		if (known >= 0) {
			if (same) {
				r->unchanged++;
				continue;
			}
			if (push(sock, dir, path, 0, why, sizeof(why)) < 0) {
				report_error(r, name, why);
				continue;
			}
			put_json(r->updated, sizeof(r->updated), &r->uo, name);
			r->nupd++;
		} else {
			if (push(sock, dir, path, 1, why, sizeof(why)) < 0) {
				report_error(r, name, why);
				continue;
			}
			put_json(r->added, sizeof(r->added), &r->ao, name);
			r->nadd++;
		}
	}
	for (i = 0; i < nhave; i++) {
		char path[PATH_MAX], why[512];

		if (have[i] == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, have[i]);
		if (drop(sock, dir, path, why, sizeof(why)) < 0) {
			report_error(r, have[i], why);
		} else {
			put_json(r->removed, sizeof(r->removed), &r->ro, have[i]);
			r->nrem++;
		}
	}
out:
	for (i = 0; i < nhave; i++)
		free(have[i]);
	if (names != NULL)
		certs_dir_files_free(names, nnames);
}

/* Print <r> as text or one JSON line. Returns the exit status. */
static int
print_report(const struct cli *c, const struct sync_report *r)
{
	if (r->fatal) {
		if (c->json) {
			fputs("{\"ok\":false,\"error\":", stdout);
			cli_json_str(stdout, r->fatal_msg);
			fputs("}\n", stdout);
		}
		cli_error("certs sync: %s", r->fatal_msg);
		return CLI_TEMP;
	}
	if (c->json) {
		printf("{\"ok\":%s,\"added\":[%s],\"updated\":[%s],\"removed\":[%s],"
		       "\"unchanged\":%d,\"errors\":[%s]}\n", r->nerr ? "false" : "true",
		       r->added, r->updated, r->removed, r->unchanged, r->errors);
	} else {
		printf("added %d [%s], updated %d [%s], removed %d [%s], unchanged %d, "
		       "errors %d %s\n", r->nadd, r->added, r->nupd, r->updated, r->nrem,
		       r->removed, r->unchanged, r->nerr, r->errors);
	}
	fflush(stdout);
	return r->nerr ? CLI_NO : CLI_OK;
}

/* Watch <dir> until SIGTERM/SIGINT, syncing after changes. */
static int
watch(const struct cli *c, const char *sock, const char *dir)
{
	struct sync_report *r = malloc(sizeof(*r));
	struct pollfd pf[2];
	sigset_t mask;
	long due, last;
	int ifd, sfd, rc = CLI_OK;

	if (r == NULL)
		return CLI_TEMP;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sfd < 0 || ifd < 0 ||
	    inotify_add_watch(ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
	                      IN_DELETE | IN_CREATE | IN_ATTRIB) < 0) {
		cli_error("certs watch: %s: %s", dir, strerror(errno));
		free(r);
		return CLI_TEMP;
	}
	pf[0].fd = sfd;
	pf[0].events = POLLIN;
	pf[1].fd = ifd;
	pf[1].events = POLLIN;
	due = health_now_ms();   /* sync at once */
	last = 0;
	for (;;) {
		long now = health_now_ms(), wait;

		if (due >= 0 && now >= due) {
			sync_once(sock, dir, r);
			if (r->fatal || r->nadd || r->nupd || r->nrem || r->nerr || last == 0)
				print_report(c, r);
			due = -1;
			last = health_now_ms();
			continue;
		}
		wait = due >= 0 ? due - now : last + WATCH_RESYNC_MS - now;
		if (wait < 0)
			wait = 0;
		if (poll(pf, 2, (int)wait) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN)
			break;   /* SIGTERM or SIGINT */
		if (pf[1].revents & POLLIN) {
			char buf[8192];

			while (read(ifd, buf, sizeof(buf)) > 0)
				;
			due = health_now_ms() + WATCH_DEBOUNCE_MS;
		} else if (due < 0 && health_now_ms() >= last + WATCH_RESYNC_MS) {
			due = health_now_ms();
		}
	}
	close(ifd);
	close(sfd);
	free(r);
	return rc;
}

/*
 * Run "certs sync" or "certs watch" (<watch_mode>); see cmd_certs.h.
 */
int
cmd_certs_sync_run(struct cli *c, int argc, char **argv, int watch_mode)
{
	const char *sock = NULL, *dirarg = NULL;
	char dir[PATH_MAX];
	struct sync_report *r;
	size_t n;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--haproxy") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (argv[i][0] != '-' && dirarg == NULL)
			dirarg = argv[i];
		else
			return cli_usage(&cmd_certs, "sync/watch: --haproxy SOCKET [DIR]");
	}
	if (sock == NULL)
		return cli_usage(&cmd_certs, "sync/watch need --haproxy SOCKET");
	if (dirarg == NULL) {
		if ((rc = cli_load_config(c, 0)) != CLI_OK)
			return rc;
		if (c->cfg->mailproxy.certs[0] == '\0') {
			cli_error("certs: no DIR given and [mailproxy] certs is not set");
			return CLI_TEMP;
		}
		dirarg = c->cfg->mailproxy.certs;
	}
	snprintf(dir, sizeof(dir), "%s", dirarg);
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';   /* HAProxy strips it from the crt-list name */
	if (watch_mode)
		return watch(c, sock, dir);
	r = malloc(sizeof(*r));
	if (r == NULL)
		return CLI_TEMP;
	sync_once(sock, dir, r);
	rc = print_report(c, r);
	free(r);
	return rc;
}
