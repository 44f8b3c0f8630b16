/*
 * libFuzzer target for the gatehouse.conf loader. The input is the file,
 * handed to cfg_load() through a memfd so the real path through libinih
 * and our reader (line numbers, long lines, sections) is what is fuzzed.
 * Every failure must come with a "file:line: key: reason" style message;
 * every success must give a configuration whose lists and servers are
 * within their bounds and whose whitelist parses as CIDRs.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cfg.h"
#include "cidr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static int memfd = -1;
static char path[64];

/* Make the memfd the input goes through; keep stdin away from any read. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_RDONLY);

	(void)argc;
	(void)argv;
	if (null >= 0) {
		dup2(null, 0);
		close(null);
	}
	memfd = memfd_create("gatehouse.conf", 0);
	CHECK(memfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

static void
check_list(const struct cfg_list *l)
{
	int i;

	CHECK(l->n >= 0 && l->n <= CFG_MAX_LISTS);
	for (i = 0; i < l->n; i++)
		CHECK(memchr(l->item[i], '\0', sizeof(l->item[i])) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned needs[] = { 0, CFG_NEED_LDAP | CFG_NEED_SERVERS,
	                                  CFG_NEED_SPOA, CFG_NEED_MAILPROXY };
	struct gh_config *cfg;
	struct cidr_list wl;
	char err[512];
	int i;

	if (size > 65536)
		return 0;
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	cfg = cfg_new();
	CHECK(cfg != NULL);
	err[0] = '\0';
	if (cfg_load(cfg, path, needs[size % 4], err, sizeof(err)) != 0) {
		/* the message names the file and says what is wrong */
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(strncmp(err, path, strlen(path)) == 0);
	} else {
		CHECK(cfg->nservers >= 0 && cfg->nservers <= CFG_MAX_SERVERS);
		for (i = 0; i < cfg->nservers; i++)
			CHECK(cfg_server_find(cfg, cfg->servers[i].name) != NULL);
		check_list(&cfg->ldap.uri);
		check_list(&cfg->memcached.servers);
		check_list(&cfg->throttle.whitelist);
		CHECK(cidr_list_parse(&wl, &cfg->throttle.whitelist, err, sizeof(err)) == 0);
	}
	free(cfg);
	return 0;
}
