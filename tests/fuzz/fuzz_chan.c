/*
 * fuzz_chan.c - the worker channel's message parser (greend/chan.c): each
 * input is split into messages at NUL bytes, as a worker's datagrams, and
 * each goes through the token bucket and gd_chan_parse, as greend reads
 * them.  Whatever a worker sends, greend must count it or keep it, never
 * crash, and a dump must come back sanitized.
 */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gd_chan ch;
	const uint8_t *p = data, *end = data + size;
	double now = 1000.0;

	gd_chan_init(&ch, NULL);
	while (p <= end) {
		const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		json_t *dump = NULL;
		bool flood = false;

		now += 0.001;
		if (gd_chan_admit(&ch, now, &flood) &&
		    gd_chan_parse(&ch, (const char *)p, len, now, &dump) == GD_MSG_DUMP) {
			if (!json_is_array(dump))
				abort();
			json_decref(dump);
		}
		if (!nul)
			break;
		p = nul + 1;
	}
	gd_chan_reset(&ch);
	return 0;
}
