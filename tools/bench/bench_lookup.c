/*
 * bench_lookup: time route lookups through the agent library, one call at a
 * time, and print one line of figures (a benchmark, never a test).
 *
 *   bench_lookup -c CONF --mode local|memcached|ldap --n N [--threads T]
 *                [--names FILE] [--seconds S]
 *
 * local      route_cached() hits (the names are looked up once first)
 * memcached  route_lookup() with local_ttl = 0 in CONF: memcached hits
 *            (the names are looked up once first to fill memcached)
 * ldap       route_lookup() with no memcached and local_ttl = 0 in CONF:
 *            every call searches the directory
 *
 * Names come from FILE (one a line) or default to alice@example.com. Each
 * thread has its own worker and cycles through the names from its own
 * offset. A run stops after N calls per thread or S seconds, whichever is
 * first. Output (one line, key=value): calls, errors, wall rate, p50/p99/max
 * latency in microseconds, thread CPU per call, and where answers came from.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "cfg.h"
#include "log.h"
#include "route.h"

#define MAX_NAMES   100000
#define MAX_THREADS 64

enum mode { MODE_LOCAL, MODE_MEMCACHED, MODE_LDAP };

struct bench {
	struct agent ag;
	enum mode mode;
	char **names;
	size_t nnames;
	uint64_t n;               /* calls per thread */
	double seconds;           /* time bound per thread */
};

struct thr {
	struct bench *b;
	int idx;
	pthread_t tid;
	uint64_t *lat_ns;         /* one per call made */
	uint64_t calls;
	uint64_t errors;
	uint64_t src[4];          /* by enum route_source */
	double wall_s;
	double cpu_s;
	int failed;               /* could not set up */
};

static double
ts_sec(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static uint64_t
ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Run one timed call for <name>; returns 0 on ROUTE_OK / cached hit. */
static int
one_call(struct bench *b, struct agent_worker *w, const char *name,
         struct route_result *res)
{
	if (b->mode == MODE_LOCAL)
		return route_cached(&b->ag, ROUTE_BY_NAME, name, PROTO_IMAP, res) == 1 &&
		       res->status == ROUTE_OK ? 0 : -1;
	return route_lookup(w, ROUTE_BY_NAME, name, PROTO_IMAP, res);
}

static void *
thread_main(void *arg)
{
	struct thr *t = arg;
	struct bench *b = t->b;
	struct agent_worker w;
	struct route_result res;
	struct timespec c0, c1, w0, w1, a, z;
	size_t off = (size_t)t->idx * 7919u;
	uint64_t i;

	if (agent_worker_init(&w, &b->ag) != 0) {
		t->failed = 1;
		return NULL;
	}
	/* Warm the caches the mode reads (not for ldap: it has none). */
	if (b->mode != MODE_LDAP) {
		for (i = 0; i < b->nnames; i++)
			(void)route_lookup(&w, ROUTE_BY_NAME, b->names[i], PROTO_IMAP, &res);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	for (i = 0; i < b->n; i++) {
		const char *name = b->names[(off + i) % b->nnames];

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (one_call(b, &w, name, &res) != 0)
			t->errors++;
		clock_gettime(CLOCK_MONOTONIC, &z);
		t->lat_ns[i] = ts_ns(&z) - ts_ns(&a);
		if ((unsigned)res.source < 4)
			t->src[res.source]++;
		/* Check the time bound every 1024 calls. */
		if ((i & 1023u) == 1023u && ts_sec(&z) - ts_sec(&w0) > b->seconds) {
			i++;
			break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	t->calls = i;
	t->wall_s = ts_sec(&w1) - ts_sec(&w0);
	t->cpu_s = ts_sec(&c1) - ts_sec(&c0);
	agent_worker_free(&w);
	return NULL;
}

static int
load_names(struct bench *b, const char *path)
{
	FILE *f;
	char line[512];

	b->names = calloc(MAX_NAMES, sizeof(*b->names));
	if (b->names == NULL)
		return -1;
	if (path == NULL) {
		b->names[0] = strdup("alice@example.com");
		b->nnames = b->names[0] != NULL;
		return b->nnames ? 0 : -1;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "bench_lookup: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (b->nnames < MAX_NAMES && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		b->names[b->nnames] = strdup(line);
		if (b->names[b->nnames] == NULL)
			break;
		b->nnames++;
	}
	fclose(f);
	return b->nnames > 0 ? 0 : -1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_lookup -c CONF --mode local|memcached|ldap --n N "
	        "[--threads T] [--names FILE] [--seconds S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static struct bench b;
	struct gh_config *cfg;
	struct logger lg;
	struct thr th[MAX_THREADS];
	const char *conf = NULL, *mode = "local", *names = NULL;
	char err[512];
	int nthr = 1, i;
	uint64_t total = 0, errors = 0, src[4] = {0}, k;
	uint64_t *all;
	double wall = 0, cpu = 0;

	b.n = 100000;
	b.seconds = 20;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(o, "-c") == 0)
			conf = v;
		else if (strcmp(o, "--mode") == 0)
			mode = v;
		else if (strcmp(o, "--n") == 0)
			b.n = strtoull(v, NULL, 10);
		else if (strcmp(o, "--threads") == 0)
			nthr = atoi(v);
		else if (strcmp(o, "--names") == 0)
			names = v;
		else if (strcmp(o, "--seconds") == 0)
			b.seconds = atof(v);
		else
			usage();
		i++;
	}
	if (conf == NULL || b.n == 0 || nthr < 1 || nthr > MAX_THREADS || b.seconds <= 0)
		usage();
	if (strcmp(mode, "local") == 0)
		b.mode = MODE_LOCAL;
	else if (strcmp(mode, "memcached") == 0)
		b.mode = MODE_MEMCACHED;
	else if (strcmp(mode, "ldap") == 0)
		b.mode = MODE_LDAP;
	else
		usage();
	if (load_names(&b, names) != 0) {
		fprintf(stderr, "bench_lookup: no names\n");
		return 2;
	}
	cfg = cfg_new();
	if (cfg == NULL || cfg_load(cfg, conf, CFG_NEED_SERVERS, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_lookup: %s\n", cfg ? err : "out of memory");
		return 2;
	}
	if (log_init(&lg, "bench_lookup", "stderr", "warning", "mail") != 0)
		return 2;
	if (agent_init(&b.ag, cfg, &lg) != 0) {
		fprintf(stderr, "bench_lookup: agent_init failed\n");
		return 2;
	}
	if (b.mode == MODE_LOCAL && b.ag.lcache == NULL) {
		fprintf(stderr, "bench_lookup: mode local needs local_ttl > 0\n");
		return 2;
	}
	memset(th, 0, sizeof(th));
	for (i = 0; i < nthr; i++) {
		th[i].b = &b;
		th[i].idx = i;
		th[i].lat_ns = calloc(b.n, sizeof(uint64_t));
		if (th[i].lat_ns == NULL)
			return 2;
		if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0)
			return 2;
	}
	for (i = 0; i < nthr; i++)
		pthread_join(th[i].tid, NULL);
	for (i = 0; i < nthr; i++) {
		if (th[i].failed) {
			fprintf(stderr, "bench_lookup: worker init failed\n");
			return 2;
		}
		total += th[i].calls;
		errors += th[i].errors;
		for (k = 0; k < 4; k++)
			src[k] += th[i].src[k];
		if (th[i].wall_s > wall)
			wall = th[i].wall_s;
		cpu += th[i].cpu_s;
	}
	all = calloc(total ? total : 1, sizeof(uint64_t));
	if (all == NULL)
		return 2;
	k = 0;
	for (i = 0; i < nthr; i++) {
		memcpy(all + k, th[i].lat_ns, th[i].calls * sizeof(uint64_t));
		k += th[i].calls;
	}
	qsort(all, total, sizeof(uint64_t), cmp_u64);
	printf("mode=%s threads=%d names=%zu calls=%llu errors=%llu wall_s=%.3f "
	       "rate=%.0f p50_us=%.3f p99_us=%.3f max_us=%.3f cpu_us_per_call=%.3f "
	       "src_local=%llu src_memcached=%llu src_ldap=%llu src_none=%llu\n",
	       mode, nthr, b.nnames, (unsigned long long)total, (unsigned long long)errors, wall,
	       wall > 0 ? (double)total / wall : 0.0,
	       total ? (double)all[total / 2] / 1e3 : 0.0,
	       total ? (double)all[(total * 99) / 100] / 1e3 : 0.0,
	       total ? (double)all[total - 1] / 1e3 : 0.0,
	       total ? cpu * 1e6 / (double)total : 0.0,
	       (unsigned long long)src[ROUTE_SRC_LOCAL], (unsigned long long)src[ROUTE_SRC_MEMCACHED],
	       (unsigned long long)src[ROUTE_SRC_LDAP], (unsigned long long)src[ROUTE_SRC_NONE]);
	for (i = 0; i < nthr; i++)
		free(th[i].lat_ns);
	free(all);
	agent_free(&b.ag);
	free(cfg);
	return errors == total ? 1 : 0;
}
