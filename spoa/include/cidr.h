/*
 * IPv4/IPv6 addresses and CIDR blocks: parsing, matching against a list
 * (the [throttle] whitelist) and grouping a client address into the part of
 * a throttle key (IPv6 clients are counted per prefix, usually /64).
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is always treated as the
 * IPv4 address it carries.
 */
#ifndef GH_CIDR_H
#define GH_CIDR_H

#include <stddef.h>
#include <stdint.h>

#include "cfg-t.h"

#define CIDR_STR_MAX 64   /* buffer that holds any cidr_group() output */

/* An address, or a block of addresses when prefix < the family's width. */
struct cidr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network byte order; IPv4 uses the first 4 bytes */
	unsigned prefix;     /* 0..32 (IPv4) or 0..128 (IPv6) */
};

/* A parsed list of blocks, such as the [throttle] whitelist. */
struct cidr_list {
	int n;
	struct cidr item[CFG_MAX_LISTS];
};

/*
 * Parse <s>: "a.b.c.d", "a.b.c.d/N", an IPv6 literal, "ipv6/N" (brackets
 * around the IPv6 literal are accepted). Host bits below the prefix are
 * cleared. Returns 0 and fills <out>, or -1 on bad input.
 */
int cidr_parse(const char *s, struct cidr *out) __attribute__((warn_unused_result));

/*
 * Parse a plain address <s> (no prefix) into <out> with a full-length
 * prefix. Returns 0, or -1 when <s> is not an IP literal.
 */
int cidr_parse_addr(const char *s, struct cidr *out) __attribute__((warn_unused_result));

/*
 * Tell whether address <a> lies in block <c>. Returns 1 or 0 (0 also when
 * the families differ).
 */
int cidr_match(const struct cidr *c, const struct cidr *a);

/*
 * Parse every entry of <src> into <out>. On a bad entry returns -1 and
 * writes "bad CIDR '<entry>'" into <err> (<errlen> bytes). Returns 0.
 */
int cidr_list_parse(struct cidr_list *out, const struct cfg_list *src, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/*
 * Tell whether address <a> lies in any block of <l>. Returns 1 or 0.
 */
int cidr_list_match(const struct cidr_list *l, const struct cidr *a);

/*
 * Write the throttle-key part of client address <ip> (text) into <out>
 * (<outlen> bytes, CIDR_STR_MAX is enough): IPv4 as is ("192.0.2.7"),
 * IPv6 masked to <ipv6_prefix> bits and printed canonically with the
 * prefix ("2001:db8:1:2::/64"; no suffix when the prefix is 128), an
 * IPv4-mapped IPv6 address as its IPv4 address. Returns 0, or -1 when
 * <ip> is not an address or <out> is too small.
 */
int cidr_group(const char *ip, unsigned ipv6_prefix, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Format <c> into <out> as "addr" (full prefix) or "addr/N". Returns 0,
 * or -1 when <out> is too small.
 */
int cidr_format(const struct cidr *c, char *out, size_t outlen);

#endif
