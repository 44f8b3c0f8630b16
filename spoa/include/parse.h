/*
 * Number, duration, boolean and address parsing used by the configuration,
 * the CLI and the daemons: one place, strict, bounded.
 */
#ifndef GH_PARSE_H
#define GH_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Parse decimal <s> (whole string) into <out>, which must be <= <max>.
 * Returns 0, or -1 on junk, sign, overflow or a value above <max>.
 */
int parse_uint(const char *s, uint64_t max, uint64_t *out) __attribute__((warn_unused_result));

/*
 * Parse a duration <s>: a whole number followed by ms, s, m, h or d; a bare
 * number means seconds. Stores milliseconds in <ms>. Returns 0 or -1.
 */
int parse_duration_ms(const char *s, uint64_t *ms) __attribute__((warn_unused_result));

/*
 * Parse a boolean <s>: yes/no, on/off, true/false, 1/0 (any case).
 * Stores 1 or 0 in <out>. Returns 0 or -1.
 */
int parse_bool(const char *s, int *out) __attribute__((warn_unused_result));

/*
 * Parse "<ip>:<port>", "[<ipv6>]:<port>" or "<ip>" (then <default_port> is
 * used; 0 means a port is required) into <ss>/<len>. Only IP literals are
 * accepted: no name resolution. Returns 0 or -1.
 */
int parse_addr(const char *s, uint16_t default_port, struct sockaddr_storage *ss,
               socklen_t *len) __attribute__((warn_unused_result));

/*
 * Parse a listening address: what parse_addr() reads, or "unix@/abs/path"
 * (HAProxy's notation) for a UNIX stream socket. Returns 0 or -1.
 */
int parse_listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Split server address <s> into <host> (<hlen> bytes incl. NUL) and
 * <port>: "<host>:<port>", "[<ipv6>]:<port>", "<host>", "[<ipv6>]" or a
 * bare "<ipv6>" (then <default_port>; 0 means a port is required), as
 * parse_addr() reads them. The host is a name or an address literal, not
 * resolved here. Returns 0 or -1.
 */
int parse_hostport(const char *s, uint16_t default_port, char *host, size_t hlen,
                   uint16_t *port) __attribute__((warn_unused_result));

/*
 * Format <sa> as "ip:port" or "[ip6]:port" into <buf> of <len> bytes
 * (port omitted when <with_port> is 0). Returns <buf>; "?" on failure.
 */
const char *parse_addr_str(const struct sockaddr *sa, int with_port, char *buf, size_t len);

#endif
