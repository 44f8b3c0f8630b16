/*
 * Configuration types: the parsed form of gatehouse.conf, shared by both
 * daemons and the CLI. Durations are kept in milliseconds, sizes in bytes.
 */
#ifndef GH_CFG_T_H
#define GH_CFG_T_H

#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define CFG_MAX_SERVERS   256   /* [server NAME] sections */
#define CFG_MAX_LISTS     16    /* entries in a space-separated address list */
#define CFG_NAME_MAX      64    /* a server name, an attribute name */
#define CFG_STR_MAX       512   /* uris, filters, messages, paths */

/* The protocols a mailbox server may serve; indexes cfg_server.port[]. */
enum gh_proto {
	PROTO_HTTP = 0,
	PROTO_HTTPS,
	PROTO_IMAP,
	PROTO_IMAPS,
	PROTO_POP3,
	PROTO_POP3S,
	PROTO__COUNT
};

/* A space-separated list of strings ("uri", "servers", "listen", ...). */
struct cfg_list {
	int n;
	char item[CFG_MAX_LISTS][CFG_STR_MAX];
};

/* One mailbox server, as declared by a [server NAME] section. */
struct cfg_server {
	char name[CFG_NAME_MAX];       /* the value found in the LDAP host attribute */
	char address[CFG_STR_MAX];     /* IP literal as written */
	struct sockaddr_storage addr;  /* parsed address, port 0 */
	socklen_t addrlen;
	uint16_t port[PROTO__COUNT];   /* 0 = protocol not served */
	char tls_name[CFG_STR_MAX];    /* name checked/sent as SNI upstream; default: NAME */
	uint16_t admin_port;           /* admin console port (Zimbra 7071); 0 = none */
	int line;                      /* where the section starts, for messages */
};

/* [log] */
struct cfg_log {
	char target[CFG_STR_MAX];      /* "stderr" or "syslog" */
	char level[CFG_NAME_MAX];      /* err, warning, notice, info, debug */
	char facility[CFG_NAME_MAX];   /* syslog facility: mail, daemon, local0..7 */
	uint32_t rate_limit;           /* lines of one kind of peer-caused warning per interval; 0 = off */
	uint32_t rate_limit_interval_ms;
};

/* [ldap] */
struct cfg_ldap {
	struct cfg_list uri;           /* tried in order */
	char bind_dn[CFG_STR_MAX];
	char bind_password_file[CFG_STR_MAX];
	char bind_password[CFG_STR_MAX]; /* read from the file at load; never logged */
	char base[CFG_STR_MAX];
	char account_filter[CFG_STR_MAX];/* %s = escaped name, may appear several times */
	char id_filter[CFG_STR_MAX];
	char vhost_filter[CFG_STR_MAX];  /* entries naming allowed virtual hosts; empty = config only */
	char name_attr[CFG_NAME_MAX];
	char host_attr[CFG_NAME_MAX];
	char id_attr[CFG_NAME_MAX];
	struct cfg_list alias_attrs;   /* attributes listing an account's aliases (for purge) */
	char default_domain[CFG_STR_MAX];/* appended to names without '@'; empty = none */
	uint32_t timeout_ms;           /* connect and search timeout */
	uint32_t probe_interval_ms;    /* while LDAP is down: one probe this often */
};

/* Where a route lookup goes when the caches do not know the answer. */
enum cfg_lookup_source {
	LOOKUP_LDAP = 0,               /* [ldap]: the directory itself */
	LOOKUP_HTTP,                   /* [lookup] urls: an nginx auth_http / Zimbra route lookup service */
};

/* [lookup] */
struct cfg_lookup {
	int source;                    /* enum cfg_lookup_source */
	struct cfg_list urls;          /* http(s) URLs of the service, tried in order */
	uint32_t timeout_ms;           /* connect and answer timeout, per URL */
	uint32_t probe_interval_ms;    /* while the service is down: one probe this often */
	int send_password;             /* send the user's password (Auth-Pass) */
	int allow_plain_http;          /* ... also to http:// URLs */
	char ca_file[CFG_STR_MAX];     /* CA file for https URLs; empty = the system's */
};

/* [memcached] */
struct cfg_memcached {
	struct cfg_list servers;       /* host:port; consistent hashing over all */
	uint32_t ttl_s;                /* route cache entry lifetime */
	uint32_t negative_ttl_s;       /* unknown-user entry lifetime */
	uint32_t timeout_ms;           /* connect / poll timeout */
	uint32_t retry_s;              /* how long a failed server is skipped */
	uint32_t local_ttl_ms;         /* in-process cache lifetime, 0 = off */
	uint32_t local_size;           /* in-process cache entries */
};

/* [throttle]; a max of 0 means unlimited. */
struct cfg_throttle {
	uint32_t ip_max, ip_ttl_s;         /* login attempts per client ip (group) */
	uint32_t user_max, user_ttl_s;     /* login attempts per account */
	uint32_t ip_fail_max, ip_fail_ttl_s;     /* failed logins per ip */
	uint32_t user_fail_max, user_fail_ttl_s; /* failed logins per account */
	uint32_t ipv6_prefix;              /* IPv6 clients are counted per this prefix */
	char ip_reject_message[CFG_STR_MAX];
	char user_reject_message[CFG_STR_MAX];
	struct cfg_list whitelist;         /* CIDRs never throttled */
};

/* [spoa] */
struct cfg_spoa {
	struct cfg_list listen;        /* host:port, SO_REUSEPORT */
	uint32_t threads;              /* lookup worker threads */
	uint32_t queue_size;           /* job queue bound; full = immediate "busy" */
	uint32_t max_frame_size;       /* offered to HAProxy, <= its own */
	uint32_t deadline_ms;          /* answer with an error var after this */
	uint32_t idle_timeout_ms;      /* close an idle HAProxy connection */
	uint32_t max_connections;
	char metrics[CFG_STR_MAX];     /* host:port of the Prometheus endpoint; empty = off */
	char auth_http[CFG_STR_MAX];   /* host:port of the nginx auth_http endpoint; empty = off */
	int strict_hosts;              /* check Host against vhosts */
	struct cfg_list vhosts;        /* allowed virtual host names (exact or *.domain) */
	struct cfg_list haproxy_admin; /* admin sockets of the HAProxy nodes (route tables) */
};

/* [mailproxy] */
struct cfg_mailproxy {
	struct cfg_list imap, imaps, pop3, pop3s; /* listen addresses */
	char certs[CFG_STR_MAX];       /* directory of PEM files, shared with HAProxy */
	int cleartext_login;           /* allow LOGIN/USER before TLS */
	int upstream_tls;              /* connect to mailbox servers' imaps/pop3s ports */
	char upstream_ca[CFG_STR_MAX]; /* CA file for upstream verification */
	int upstream_verify;           /* verify the upstream certificate */
	int send_id;                   /* IMAP ID with the client address */
	int send_xoip;                 /* POP3 XOIP with the client address */
	uint32_t threads;              /* lookup worker threads */
	uint32_t queue_size;
	uint32_t connect_timeout_ms;   /* to the mailbox server */
	uint32_t upstream_timeout_ms;  /* greeting / login answer from the mailbox server */
	uint32_t login_timeout_ms;     /* whole pre-auth phase */
	uint32_t failure_delay_ms;     /* before answering a login the proxy itself refuses */
	uint32_t handshake_timeout_ms; /* TLS handshake */
	uint32_t imap_idle_timeout_ms; /* after login */
	uint32_t pop3_idle_timeout_ms;
	uint32_t shutdown_grace_ms;    /* SIGTERM: how long sessions may finish */
	uint32_t max_connections;
	uint32_t max_handshakes;       /* concurrent TLS handshakes */
	uint32_t max_bad_commands;     /* then BYE and close */
	uint32_t upstream_retries;     /* connect attempts to the mailbox server */
	uint32_t buffer_size;          /* relay buffer per direction */
	char greeting_imap[CFG_STR_MAX];
	char greeting_pop3[CFG_STR_MAX];
	char metrics[CFG_STR_MAX];
	char audit_log[CFG_STR_MAX];   /* file for one line per login; empty = main log */
	char gssapi_keytab[CFG_STR_MAX];   /* Kerberos logins (SASL GSSAPI): keys; empty = off */
	char gssapi_hostname[CFG_STR_MAX]; /* imap/<host>, pop/<host>; empty = any in the keytab */
	char gssapi_realm[CFG_STR_MAX];    /* principals of this realm map to their name */
	uint32_t gssapi_threads;           /* threads of their own for the Kerberos steps */
	struct cfg_list gssapi_realms;     /* "REALM=domain": user@REALM -> user@domain */
	char master_user[CFG_STR_MAX];     /* logs in to the mailbox server for a GSSAPI user */
	char master_password_file[CFG_STR_MAX];
	int master_cleartext_loopback;     /* allow the master login without TLS to 127/8, ::1 */
};

/*
 * [cluster]: the other nodes' daemons, for the commands that show the whole
 * cluster (the HAProxy admin sockets are [spoa] haproxy_admin).
 */
struct cfg_cluster {
	struct cfg_list spoa_metrics;      /* every node's agents' metrics ip:port */
	struct cfg_list mailproxy_metrics; /* every node's mail proxies' metrics ip:port */
};

/* The whole file. Plain data: copyable, no pointers to free. */
struct gh_config {
	char path[CFG_STR_MAX];
	struct cfg_log log;
	struct cfg_ldap ldap;
	struct cfg_lookup lookup;
	struct cfg_memcached memcached;
	struct cfg_throttle throttle;
	struct cfg_spoa spoa;
	struct cfg_mailproxy mailproxy;
	struct cfg_cluster cluster;
	int nservers;
	struct cfg_server servers[CFG_MAX_SERVERS];
};

#endif
