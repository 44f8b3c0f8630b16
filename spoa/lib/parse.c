/*
 * Strict parsing of the small values found in configuration files and on
 * command lines. Every function accepts the whole string or nothing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <strings.h>

#include "parse.h"

/*
 * Parse decimal <s> into <out>, at most <max>. Returns 0 or -1.
 */
int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Parse a duration <s> ("500ms", "2s", "5m", "1h", "1d", bare = seconds)
 * into milliseconds <ms>. Returns 0 or -1.
 */
int
parse_duration_ms(const char *s, uint64_t *ms)
{
	char num[32];
	size_t n = 0;
	uint64_t v, mult;

	if (s == NULL)
		return -1;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_uint(num, UINT32_MAX, &v) < 0)
		return -1;
	s += n;
	if (*s == '\0' || strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(s, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(s, "d") == 0)
		mult = 86400 * 1000;
	else
		return -1;
	*ms = v * mult;
	return 0;
}

/*
 * Parse a boolean <s> into <out> (1 or 0). Returns 0 or -1.
 */
int
parse_bool(const char *s, int *out)
{
	static const char *yes[] = { "yes", "on", "true", "1" };
	static const char *no[] = { "no", "off", "false", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/*
 * Parse an address with optional port <s> into <ss>/<len>; <default_port>
 * is used when none is written (0 = a port is required). Returns 0 or -1.
 */
int
parse_addr(const char *s, uint16_t default_port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *end;
	uint64_t p = default_port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s == NULL || *s == '\0')
		return -1;
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		end = strrchr(s, ':');
		if (end != NULL && strchr(s, ':') == end) {
			hl = (size_t)(end - s);
			port = end + 1;
		} else {
			hl = strlen(s);	/* no port, or a bare IPv6 literal */
		}
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (port != NULL && parse_uint(port, 65535, &p) < 0)
		return -1;
	if (p == 0)
		return -1;
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
	}
	return 0;
}

/*
 * Split "<host>:<port>", "[<ipv6>]:<port>" or "<host>" <s> into <host>
 * (<hlen> bytes) and <port>; see parse.h. Returns 0 or -1.
 */
int
parse_hostport(const char *s, uint16_t default_port, char *host, size_t hlen, uint16_t *port)
{
	const char *colon, *hend;
	uint64_t p = default_port;
	size_t n, i;

	if (s == NULL || *s == '\0')
		return -1;
	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (hend == NULL)
			return -1;
		s++;
		if (hend[1] == ':')
			colon = hend + 1;
		else if (hend[1] == '\0')
			colon = NULL;
		else
			return -1;
		if (memchr(s, ':', (size_t)(hend - s)) == NULL)
			return -1;   /* brackets are for IPv6 literals only */
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL;   /* a bare IPv6 literal, without a port (as parse_addr()) */
		hend = colon != NULL ? colon : s + strlen(s);
	}
	if (colon != NULL && parse_uint(colon + 1, 65535, &p) < 0)
		return -1;
	n = (size_t)(hend - s);
	if (p == 0 || n == 0 || n >= hlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '[' || ch == ']')
			return -1;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/*
 * Format <sa> into <buf> (<len> bytes) as "ip:port", "[ip6]:port", or the
 * bare address when <with_port> is 0. Returns <buf>, "?" on failure.
 */
const char *
parse_addr_str(const struct sockaddr *sa, int with_port, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
			return "?";
		n = with_port ? snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port))
		              : snprintf(buf, len, "%s", ip);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)) == NULL)
			return "?";
		n = with_port ? snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port))
		              : snprintf(buf, len, "%s", ip);
	} else if (sa->sa_family == AF_UNIX) {
		n = snprintf(buf, len, "unix");   /* peers of a UNIX socket have no name */
	} else {
		return "?";
	}
	if (n < 0 || (size_t)n >= len)
		return "?";
	return buf;
}

/* Parse listening address <s> ("ip:port", "[v6]:port" or "unix@/path") into <ss>/<len>. */
int
parse_listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n;

	if (strncmp(s, "unix@", 5) != 0)
		return parse_addr(s, 0, ss, len);
	s += 5;
	n = strlen(s);
	if (s[0] != '/' || n >= sizeof(sun->sun_path))
		return -1;
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, s, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}
