/*
 * IPv4/IPv6 CIDR blocks: strict parsing (IP literals only, no name
 * resolution), matching, and the grouping of client addresses used by the
 * throttle keys. IPv4-mapped IPv6 addresses are folded into IPv4 so that a
 * dual-stack listener counts a client the same way whichever socket it
 * came through.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "parse.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Clear every bit of <addr> below the first <prefix> bits. */
static void
mask_bits(uint8_t *addr, unsigned bytes, unsigned prefix)
{
	unsigned i;

	for (i = 0; i < bytes; i++) {
		if (prefix >= 8) {
			prefix -= 8;
			continue;
		}
		addr[i] &= (uint8_t)(0xff00u >> prefix);
		prefix = 0;
	}
}

/*
 * Parse the address part <s> into <out> (family, addr) with a full prefix.
 * Brackets around an IPv6 literal are accepted. Returns 0 or -1.
 */
static int
parse_literal(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);

	memset(out, 0, sizeof(*out));
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
		return 0;
	}
	return -1;
}

/*
 * Turn an IPv6 block inside ::ffff:0:0/96 into the IPv4 block it denotes.
 */
static void
fold_mapped(struct cidr *c)
{
	if (c->family != AF_INET6 || c->prefix < 96 ||
	    memcmp(c->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) != 0)
		return;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->family = AF_INET;
	c->prefix -= 96;
}

/*
 * Parse a plain address <s> into <out>. Returns 0 or -1.
 */
int
cidr_parse_addr(const char *s, struct cidr *out)
{
	if (s == NULL || parse_literal(s, out) < 0)
		return -1;
	fold_mapped(out);
	return 0;
}

/*
 * Parse "<addr>" or "<addr>/<prefix>" from <s> into <out>, clearing host
 * bits. Returns 0 or -1.
 */
int
cidr_parse(const char *s, struct cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 2];
	const char *slash;
	uint64_t prefix;
	size_t n;

	if (s == NULL)
		return -1;
	slash = strchr(s, '/');
	if (slash == NULL)
		return cidr_parse_addr(s, out);
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(addr))
		return -1;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (parse_literal(addr, out) < 0)
		return -1;
	if (parse_uint(slash + 1, out->family == AF_INET ? 32 : 128, &prefix) < 0)
		return -1;
	out->prefix = (unsigned)prefix;
	mask_bits(out->addr, out->family == AF_INET ? 4 : 16, out->prefix);
	fold_mapped(out);
	return 0;
}

/*
 * Tell whether address <a> lies in block <c>. Returns 1 or 0.
 */
int
cidr_match(const struct cidr *c, const struct cidr *a)
{
	unsigned full, rest;

	if (c->family != a->family)
		return 0;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (full > 0 && memcmp(c->addr, a->addr, full) != 0)
		return 0;
	if (rest != 0) {
		uint8_t m = (uint8_t)(0xff00u >> rest);

		if ((c->addr[full] & m) != (a->addr[full] & m))
			return 0;
	}
	return 1;
}

/*
 * Parse every entry of <src> into <out>. Returns 0, or -1 with a message
 * naming the bad entry in <err>.
 */
int
cidr_list_parse(struct cidr_list *out, const struct cfg_list *src, char *err, size_t errlen)
{
	int i;

	out->n = 0;
	for (i = 0; i < src->n && i < CFG_MAX_LISTS; i++) {
		if (cidr_parse(src->item[i], &out->item[out->n]) < 0) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "bad CIDR '%.100s'", src->item[i]);
			return -1;
		}
		out->n++;
	}
	return 0;
}

/*
 * Tell whether <a> lies in any block of <l>. Returns 1 or 0.
 */
int
cidr_list_match(const struct cidr_list *l, const struct cidr *a)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->item[i], a))
			return 1;
	return 0;
}

/*
 * Format <c> into <out> as "addr" or "addr/N". Returns 0 or -1.
 */
int
cidr_format(const struct cidr *c, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];
	unsigned full = c->family == AF_INET ? 32 : 128;
	int n;

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		return -1;
	if (c->prefix >= full)
		n = snprintf(out, outlen, "%s", a);
	else
		n = snprintf(out, outlen, "%s/%u", a, c->prefix);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/*
 * Write the throttle-key part of client address <ip> into <out>: IPv4 as
 * is, IPv6 masked to <ipv6_prefix> with "/N". Returns 0 or -1.
 */
int
cidr_group(const char *ip, unsigned ipv6_prefix, char *out, size_t outlen)
{
	struct cidr c;

	if (cidr_parse_addr(ip, &c) < 0)
		return -1;
	if (c.family == AF_INET6) {
		/* a /0 would lump every IPv6 client into one counter: allowed,
		 * but at least keep the value within range */
		c.prefix = ipv6_prefix > 128 ? 128 : ipv6_prefix;
		mask_bits(c.addr, 16, c.prefix);
	}
	return cidr_format(&c, out, outlen);
}
