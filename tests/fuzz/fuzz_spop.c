/*
 * libFuzzer target for the SPOP codec: the input is a byte stream as read
 * from HAProxy; every frame in it is parsed with the negotiated limit, and
 * decoded as HELLO, DISCONNECT and NOTIFY. Each decoded argument is then
 * echoed into an ACK, which must decode back as a frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Echo <v> into <w> as a set-var action and count the bytes seen. */
static void
echo_value(struct spop_writer *w, const struct spop_data *v)
{
	(void)spop_ack_set_var(w, SPOP_SCOPE_TXN, "v", v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[16384];
	size_t off = 0;
	int frames = 0;

	while (off < size && frames < 64) {
		struct spop_frame f, g;
		struct spop_hello h;
		struct spop_disconnect d;
		struct spop_iter it;
		struct spop_msg m;
		struct spop_str name;
		struct spop_data v;
		struct spop_writer w;
		int st, n;

		n = spop_frame_parse(data + off, size - off, SPOP_FRAME_DEFAULT_MAX, &f, &st);
		if (n <= 0)
			break;
		if (f.payload + f.payload_len > data + size)
			abort();
		(void)spop_hello_parse(&f, &h, &st);
		(void)spop_disconnect_parse(&f, &d);
		spop_ack_begin(&w, out, sizeof(out), SPOP_FRAME_DEFAULT_MAX, f.stream_id, f.frame_id);
		spop_notify_begin(&f, &it);
		while (spop_msg_next(&it, &m) == 1) {
			unsigned a = 0;

			while (spop_arg_next(&m, &name, &v) == 1) {
				a++;
				echo_value(&w, &v);
			}
			if (a != m.nb_args)
				abort();
		}
		n = spop_ack_end(&w);
		if (n > 0) {
			if (spop_frame_parse(out, (size_t)n, SPOP_FRAME_DEFAULT_MAX, &g, &st) != n)
				abort();
			if (g.type != SPOP_FRM_ACK || g.stream_id != f.stream_id)
				abort();
		}
		off += f.size;
		frames++;
	}
	return 0;
}
