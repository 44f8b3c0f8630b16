/*
 * SPOP 2.0 types: frame types, typed-data types, status codes, and the
 * decoded views the codec hands out. Every decoded string points into the
 * caller's input buffer, which must outlive the view. See the research
 * notes on SPOP for the wire format as HAProxy 2.6 speaks it.
 */
#ifndef GH_SPOP_T_H
#define GH_SPOP_T_H

#include <stddef.h>
#include <stdint.h>

#define SPOP_VERSION            "2.0"
#define SPOP_LEN_SIZE           4       /* the length prefix, not counted in it */
#define SPOP_FRAME_MIN          7       /* type + flags + 1-byte sid + 1-byte fid */
#define SPOP_FRAME_MIN_MAX      256     /* smallest max-frame-size HAProxy accepts */
#define SPOP_FRAME_DEFAULT_MAX  16380   /* HAProxy's default: tune.bufsize - 4 */
#define SPOP_VARINT_MAX         10      /* bytes of the longest varint (2^64-1) */
#define SPOP_DISCONNECT_MSG_MAX 255     /* HAProxy refuses a longer message */

/* Frame flags. */
#define SPOP_FL_FIN   0x00000001u
#define SPOP_FL_ABORT 0x00000002u

/* Frame types; HAProxy sends 0..3, the agent 101..103. */
enum spop_frame_type {
	SPOP_FRM_UNSET              = 0,
	SPOP_FRM_HAPROXY_HELLO      = 1,
	SPOP_FRM_HAPROXY_DISCONNECT = 2,
	SPOP_FRM_NOTIFY             = 3,
	SPOP_FRM_AGENT_HELLO        = 101,
	SPOP_FRM_AGENT_DISCONNECT   = 102,
	SPOP_FRM_ACK                = 103,
};

/* Typed-data types (low 4 bits of the type byte); 10..15 are reserved. */
enum spop_data_type {
	SPOP_DATA_NULL   = 0,
	SPOP_DATA_BOOL   = 1,
	SPOP_DATA_INT32  = 2,
	SPOP_DATA_UINT32 = 3,
	SPOP_DATA_INT64  = 4,
	SPOP_DATA_UINT64 = 5,
	SPOP_DATA_IPV4   = 6,
	SPOP_DATA_IPV6   = 7,
	SPOP_DATA_STR    = 8,
	SPOP_DATA_BIN    = 9,
};

/* Status codes carried by DISCONNECT frames. */
enum spop_status {
	SPOP_ST_NORMAL         = 0,
	SPOP_ST_IO             = 1,
	SPOP_ST_TIMEOUT        = 2,
	SPOP_ST_TOO_BIG        = 3,
	SPOP_ST_INVALID        = 4,
	SPOP_ST_NO_VSN         = 5,
	SPOP_ST_NO_FRAME_SIZE  = 6,
	SPOP_ST_NO_CAP         = 7,
	SPOP_ST_BAD_VSN        = 8,
	SPOP_ST_BAD_FRAME_SIZE = 9,
	SPOP_ST_FRAG           = 10,
	SPOP_ST_INTERLACED     = 11,
	SPOP_ST_FRAMEID        = 12,
	SPOP_ST_RES            = 13,
	SPOP_ST_UNKNOWN        = 99,
};

/* Variable scopes of a set-var action. */
enum spop_scope {
	SPOP_SCOPE_PROC = 0,
	SPOP_SCOPE_SESS = 1,
	SPOP_SCOPE_TXN  = 2,
	SPOP_SCOPE_REQ  = 3,
	SPOP_SCOPE_RES  = 4,
};

/* Action types of an ACK. */
enum spop_action {
	SPOP_ACT_SET_VAR   = 1,
	SPOP_ACT_UNSET_VAR = 2,
};

/* A byte string inside an input buffer (not NUL-terminated). */
struct spop_str {
	const uint8_t *ptr;
	size_t len;
};

/* One decoded typed value. Strings point into the input buffer. */
struct spop_data {
	enum spop_data_type type;
	union {
		int b;                 /* BOOL */
		uint64_t u;            /* the four int types, raw 64 bits */
		uint8_t ipv4[4];       /* network order */
		uint8_t ipv6[16];
		struct spop_str str;   /* STR and BIN */
	} v;
};

/* A decoded frame header; <payload> points into the input buffer. */
struct spop_frame {
	uint8_t type;              /* enum spop_frame_type */
	uint32_t flags;
	uint64_t stream_id;
	uint64_t frame_id;
	const uint8_t *payload;
	size_t payload_len;
	size_t size;               /* whole frame on the wire, length prefix included */
};

/* A read cursor over part of a frame (KV-list, messages, arguments). */
struct spop_iter {
	const uint8_t *p;
	const uint8_t *end;
};

/* What a HAPROXY-HELLO carried. */
struct spop_hello {
	struct spop_str versions;      /* supported-versions */
	uint32_t max_frame_size;
	struct spop_str capabilities;
	int healthcheck;               /* 1 for the health-check HELLO */
	struct spop_str engine_id;     /* empty when absent */
};

/* What a DISCONNECT carried. */
struct spop_disconnect {
	uint32_t status;
	struct spop_str message;
};

/* One message of a NOTIFY: its name and a cursor over its arguments. */
struct spop_msg {
	struct spop_str name;
	unsigned nb_args;
	struct spop_iter args;         /* exactly <nb_args> KV items, already validated */
};

/* A writer for frames being built in a caller's buffer. */
struct spop_writer {
	uint8_t *buf;
	size_t size;                   /* capacity of <buf> */
	size_t off;                    /* bytes written so far */
	size_t max_frame;              /* negotiated limit, length prefix excluded */
	unsigned actions;              /* actions in the ACK being built */
	int err;                       /* set once something did not fit */
};

#endif
