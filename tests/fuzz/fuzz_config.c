/*
 * fuzz_config.c - the greend.json loader (greend/config.c) on arbitrary
 * bytes: it must reject or accept, never crash, leak or overflow.  The
 * text is parsed as gd_config_load would after reading the file.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct gd_config *cfg;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cfg = gd_config_parse(text, "fuzz.json", "/etc/greend", err, sizeof(err));
	if (cfg) {
		/* What reload compares must be there for every worker. */
		for (size_t i = 0; i < cfg->nworkers; i++)
			if (!cfg->workers[i]->effective || !cfg->workers[i]->argv[0])
				abort();
	} else if (!err[0]) {
		abort(); /* a rejection always says why */
	}
	gd_config_free(cfg);
	free(text);
	return 0;
}
