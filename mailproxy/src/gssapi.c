/*
 * SASL GSSAPI, server side (RFC 4752), on MIT Kerberos' GSS-API. The
 * acceptor credential comes from the configured keytab through
 * gss_acquire_cred_from() (no process-wide KRB5_KTNAME), limited to the
 * Kerberos mechanism. After the context is established the server offers
 * "no security layer" only, in a message wrapped with integrity, and reads
 * the client's choice and authorization identity back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include "gssapi.h"

/* Where a conversation stands. */
enum gstate {
	GS_ACCEPT = 0,      /* security context being established */
	GS_EMPTY,           /* our last context token sent: the client answers with nothing */
	GS_LAYER,           /* security layer offer sent: the client's choice comes */
	GS_END,             /* done or failed: no more steps */
};

struct gssapi {
	enum gstate state;
	gss_cred_id_t cred;
	gss_ctx_id_t ctx;
	char keytab[512];
	char hostname[256];
	char service[16];
	char principal[GSSAPI_NAME_MAX + 1];
	char authzid[GSSAPI_NAME_MAX + 1];
	char err[256];
};

/* Create a conversation for <service>/<hostname> with keys from <keytab>. */
struct gssapi *
gssapi_new(const char *keytab, const char *hostname, const char *service)
{
	struct gssapi *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->cred = GSS_C_NO_CREDENTIAL;
	g->ctx = GSS_C_NO_CONTEXT;
	snprintf(g->keytab, sizeof(g->keytab), "%s", keytab);
	snprintf(g->hostname, sizeof(g->hostname), "%s", hostname);
	snprintf(g->service, sizeof(g->service), "%s", service);
	return g;
}

/* Write the text of status <code> of <type> after <prefix> into the error of <g>. */
static void
status_text(struct gssapi *g, const char *prefix, OM_uint32 major, OM_uint32 minor)
{
	OM_uint32 min2, ctx = 0;
	gss_buffer_desc msg = GSS_C_EMPTY_BUFFER;
	size_t n;

	n = (size_t)snprintf(g->err, sizeof(g->err), "%s", prefix);
	/* the minor (Kerberos) status says what happened; the major is generic */
	if (minor != 0 &&
	    gss_display_status(&min2, minor, GSS_C_MECH_CODE, gss_mech_krb5, &ctx, &msg) ==
	    GSS_S_COMPLETE) {
		if (n < sizeof(g->err))
			snprintf(g->err + n, sizeof(g->err) - n, ": %.*s", (int)msg.length,
			         (const char *)msg.value);
		gss_release_buffer(&min2, &msg);
	} else if (gss_display_status(&min2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &msg) ==
	           GSS_S_COMPLETE) {
		if (n < sizeof(g->err))
			snprintf(g->err + n, sizeof(g->err) - n, ": %.*s", (int)msg.length,
			         (const char *)msg.value);
		gss_release_buffer(&min2, &msg);
	}
	/* error texts may quote names; keep the log line one line */
	for (n = 0; g->err[n] != '\0'; n++)
		if (g->err[n] == '\r' || g->err[n] == '\n')
			g->err[n] = ' ';
}

/* Fail <g> with <why>: no more steps. Returns <rc>. */
static enum gssapi_rc
fail(struct gssapi *g, enum gssapi_rc rc, const char *why)
{
	if (why != NULL)
		snprintf(g->err, sizeof(g->err), "%s", why);
	g->state = GS_END;
	return rc;
}

/* Copy <b> into <out> (<outmax> octets). Returns 0 or -1 when it does not fit. */
static int
copy_out(const gss_buffer_desc *b, unsigned char *out, size_t outmax, size_t *outlen)
{
	if (b->length > outmax)
		return -1;
	if (b->length > 0)
		memcpy(out, b->value, b->length);
	*outlen = b->length;
	return 0;
}

/* Acquire the acceptor credential of <g> from its keytab. Returns 0 or -1 (error set). */
static int
acquire(struct gssapi *g)
{
	OM_uint32 major, minor, min2;
	gss_key_value_element_desc el = { "keytab", g->keytab };
	gss_key_value_set_desc store = { 1, &el };
	gss_OID_desc krb5 = *gss_mech_krb5;
	gss_OID_set_desc mechs = { 1, &krb5 };
	gss_name_t name = GSS_C_NO_NAME;

	if (g->hostname[0] != '\0') {
		char svc[sizeof(g->service) + sizeof(g->hostname) + 1];
		gss_buffer_desc b;

		snprintf(svc, sizeof(svc), "%s@%s", g->service, g->hostname);
		b.value = svc;
		b.length = strlen(svc);
		major = gss_import_name(&minor, &b, GSS_C_NT_HOSTBASED_SERVICE, &name);
		if (GSS_ERROR(major)) {
			status_text(g, "service name", major, minor);
			return -1;
		}
	}
	major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
	                              &store, &g->cred, NULL, NULL);
	if (name != GSS_C_NO_NAME)
		gss_release_name(&min2, &name);
	if (GSS_ERROR(major)) {
		status_text(g, "keytab", major, minor);
		return -1;
	}
	return 0;
}

/*
 * Check that the ticket accepted by <g> was for our service: with no host
 * name configured the keytab may hold other services' keys (host/, HTTP/).
 * Returns 0 or -1 (error set).
 */
static int
check_target(struct gssapi *g)
{
	OM_uint32 major, minor, min2;
	gss_name_t targ = GSS_C_NO_NAME;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
	size_t sl = strlen(g->service);
	int ok;

	major = gss_inquire_context(&minor, g->ctx, NULL, &targ, NULL, NULL, NULL, NULL, NULL);
	if (GSS_ERROR(major)) {
		status_text(g, "inquire context", major, minor);
		return -1;
	}
	major = gss_display_name(&minor, targ, &b, NULL);
	gss_release_name(&min2, &targ);
	if (GSS_ERROR(major)) {
		status_text(g, "target name", major, minor);
		return -1;
	}
	ok = b.length > sl && memcmp(b.value, g->service, sl) == 0 &&
	     ((const char *)b.value)[sl] == '/';
	if (!ok)
		snprintf(g->err, sizeof(g->err), "ticket is for %.*s, not a %s service principal",
		         (int)(b.length < 128 ? b.length : 128), (const char *)b.value, g->service);
	gss_release_buffer(&min2, &b);
	return ok ? 0 : -1;
}

/* Write the wrapped security layer offer of <g> into <out>. Returns a gssapi_rc. */
static enum gssapi_rc
offer_layer(struct gssapi *g, unsigned char *out, size_t outmax, size_t *outlen)
{
	/* no security layer, and no maximum size: nothing is ever wrapped */
	unsigned char offer[4] = { 0x01, 0x00, 0x00, 0x00 };
	gss_buffer_desc in = { sizeof(offer), offer }, w = GSS_C_EMPTY_BUFFER;
	OM_uint32 major, minor, min2;
	int conf = 0;

	major = gss_wrap(&minor, g->ctx, 0, GSS_C_QOP_DEFAULT, &in, &conf, &w);
	if (GSS_ERROR(major)) {
		status_text(g, "wrap", major, minor);
		return fail(g, GSSAPI_FAIL, NULL);
	}
	if (copy_out(&w, out, outmax, outlen) < 0) {
		gss_release_buffer(&min2, &w);
		return fail(g, GSSAPI_FAIL, "security layer offer too long");
	}
	gss_release_buffer(&min2, &w);
	g->state = GS_LAYER;
	return GSSAPI_CONTINUE;
}

/* The context of <g> is established: name the client, then the layer offer. */
static enum gssapi_rc
established(struct gssapi *g, gss_name_t src, const gss_buffer_desc *last,
            unsigned char *out, size_t outmax, size_t *outlen)
{
	OM_uint32 major, minor, min2;
	gss_buffer_desc b = GSS_C_EMPTY_BUFFER;

	if (check_target(g) < 0)
		return fail(g, GSSAPI_FAIL, NULL);
	major = gss_display_name(&minor, src, &b, NULL);
	if (GSS_ERROR(major)) {
		status_text(g, "client name", major, minor);
		return fail(g, GSSAPI_FAIL, NULL);
	}
	if (b.length == 0 || b.length > GSSAPI_NAME_MAX || memchr(b.value, '\0', b.length)) {
		gss_release_buffer(&min2, &b);
		return fail(g, GSSAPI_FAIL, "client principal name unusable");
	}
	memcpy(g->principal, b.value, b.length);
	g->principal[b.length] = '\0';
	gss_release_buffer(&min2, &b);
	/* the last context token (mutual authentication) goes first; the
	 * client answers it with an empty response, then comes the offer */
	if (last->length > 0) {
		if (copy_out(last, out, outmax, outlen) < 0)
			return fail(g, GSSAPI_FAIL, "context token too long");
		g->state = GS_EMPTY;
		return GSSAPI_CONTINUE;
	}
	return offer_layer(g, out, outmax, outlen);
}

/*
 * Tell whether a failed accept is the proxy's trouble (a temporary
 * failure) rather than the client's: the keytab cannot be read, or a
 * system call failed (replay cache). MIT reports system errors as errno
 * values in the minor status.
 */
static int
accept_is_temporary(OM_uint32 major, OM_uint32 minor)
{
	if (GSS_ROUTINE_ERROR(major) == GSS_S_FAILURE && minor > 0 && minor < 4096)
		return 1;
	return 0;
}

/* A context step of <g> with client token <in>/<inlen>. */
static enum gssapi_rc
accept_step(struct gssapi *g, const unsigned char *in, size_t inlen, unsigned char *out,
            size_t outmax, size_t *outlen)
{
	OM_uint32 major, minor, min2;
	gss_buffer_desc tin = { inlen, (void *)(uintptr_t)in }, tout = GSS_C_EMPTY_BUFFER;
	gss_name_t src = GSS_C_NO_NAME;
	gss_OID mech = GSS_C_NO_OID;
	enum gssapi_rc rc;

	if (inlen == 0)
		return fail(g, GSSAPI_FAIL, "empty GSSAPI token");
	if (g->cred == GSS_C_NO_CREDENTIAL && acquire(g) < 0)
		return fail(g, GSSAPI_TEMPFAIL, NULL);
	major = gss_accept_sec_context(&minor, &g->ctx, g->cred, &tin, GSS_C_NO_CHANNEL_BINDINGS,
	                               &src, &mech, &tout, NULL, NULL, NULL);
	if (GSS_ERROR(major)) {
		status_text(g, "ticket refused", major, minor);
		gss_release_buffer(&min2, &tout);
		return fail(g, accept_is_temporary(major, minor) ? GSSAPI_TEMPFAIL : GSSAPI_FAIL,
		            NULL);
	}
	if (major & GSS_S_CONTINUE_NEEDED) {
		rc = copy_out(&tout, out, outmax, outlen) < 0
		     ? fail(g, GSSAPI_FAIL, "context token too long") : GSSAPI_CONTINUE;
		gss_release_buffer(&min2, &tout);
		return rc;
	}
	rc = established(g, src, &tout, out, outmax, outlen);
	gss_release_name(&min2, &src);
	gss_release_buffer(&min2, &tout);
	return rc;
}

/* The client's security layer choice <in>/<inlen>, wrapped. */
static enum gssapi_rc
layer_step(struct gssapi *g, const unsigned char *in, size_t inlen)
{
	OM_uint32 major, minor, min2;
	gss_buffer_desc w = { inlen, (void *)(uintptr_t)in }, u = GSS_C_EMPTY_BUFFER;
	int conf = 0, r;
	gss_qop_t qop = 0;

	major = gss_unwrap(&minor, g->ctx, &w, &u, &conf, &qop);
	if (GSS_ERROR(major)) {
		status_text(g, "security layer answer", major, minor);
		return fail(g, GSSAPI_FAIL, NULL);
	}
	r = gssapi_parse_layer(u.value, u.length, g->authzid, sizeof(g->authzid));
	gss_release_buffer(&min2, &u);
	switch (r) {
	case GSSAPI_LAYER_OK:
		g->state = GS_END;
		return GSSAPI_DONE;
	case GSSAPI_LAYER_WANTED:
		return fail(g, GSSAPI_FAIL, "client insists on a security layer (only none is offered)");
	case GSSAPI_LAYER_AUTHZID:
		return fail(g, GSSAPI_FAIL, "authorization identity unusable");
	default:
		return fail(g, GSSAPI_FAIL, "security layer answer too short");
	}
}

/* Take client response <in>/<inlen> and write the next challenge: see gssapi.h. */
enum gssapi_rc
gssapi_step(struct gssapi *g, const unsigned char *in, size_t inlen, unsigned char *out,
            size_t outmax, size_t *outlen)
{
	*outlen = 0;
	g->err[0] = '\0';
	switch (g->state) {
	case GS_ACCEPT:
		return accept_step(g, in, inlen, out, outmax, outlen);
	case GS_EMPTY:
		if (inlen != 0)
			return fail(g, GSSAPI_FAIL, "expected an empty response");
		return offer_layer(g, out, outmax, outlen);
	case GS_LAYER:
		return layer_step(g, in, inlen);
	default:
		return fail(g, GSSAPI_FAIL, "conversation already over");
	}
}

/* Return the authenticated principal of <g>. */
const char *
gssapi_principal(const struct gssapi *g)
{
	return g->principal;
}

/* Return the authzid the client of <g> asked for. */
const char *
gssapi_authzid(const struct gssapi *g)
{
	return g->authzid;
}

/* Return why the last step of <g> failed. */
const char *
gssapi_error(const struct gssapi *g)
{
	return g->err;
}

/* Free conversation <g>. */
void
gssapi_free(struct gssapi *g)
{
	OM_uint32 minor;

	if (g == NULL)
		return;
	if (g->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &g->ctx, GSS_C_NO_BUFFER);
	if (g->cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&minor, &g->cred);
	explicit_bzero(g, sizeof(*g));
	free(g);
}
