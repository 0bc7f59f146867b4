/*
 * fuzz_control.c - the control protocol's request side: bytes as a client
 * would send them, cut into lines by greend's bounded line buffer
 * (greend/proto.c), each line handled by gd_control_handle
 * (greend/commands.c) and its answer serialized.  The supervisor holds two
 * workers that are never started: it is shutting down, so start and
 * restart are refused and nothing is forked, while every parser and
 * validator on the way still runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "commands.h"
#include "control.h"
#include "fuzz.h"
#include "proto.h"

static const char conf_text[] =
	"{\"control_socket\":\"/nonexistent/fuzz.sock\",\"preload\":\"/nonexistent/shim.so\","
	"\"workers\":[{\"name\":\"web\",\"command\":[\"/bin/true\"],\"instances\":2},"
	"{\"name\":\"db\",\"command\":[\"/bin/true\"]}]}";

static struct gd_sup sup;
static struct gd_control ctl;
static struct gd_daemon_info info;

static int fuzz_reload(void *data, json_t *report, char *err, size_t errlen)
{
	snprintf(err, errlen, "reload is not fuzzed");
	return -1;
}

static void fuzz_shutdown(void *data)
{
}

static void setup(void)
{
	char err[512];
	struct gd_config *cfg;

	if (ctl.loop)
		return;
	cfg = gd_config_parse(conf_text, "fuzz.json", "/", err, sizeof(err));
	if (!cfg || gd_sup_init(&sup, ev_default_loop(0), cfg) < 0)
		abort();
	sup.shutting_down = true;
	ctl.loop = sup.loop;
	ctl.sup = &sup;
	ctl.info = &info;
	ctl.fd = ctl.op_fd = ctl.lock_fd = -1;
	ctl.reload = fuzz_reload;
	ctl.shutdown = fuzz_shutdown;
	info.socket = "/nonexistent/fuzz.sock";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gd_linebuf lb;
	char *line;
	int r;

	setup();
	gd_linebuf_init(&lb, GD_LINE_MAX);
	if (gd_linebuf_append(&lb, (const char *)data, size) == 0) {
		while ((r = gd_linebuf_next(&lb, &line)) == 1) {
			json_t *answer = gd_control_handle(&ctl, NULL, line);
			size_t len;
			char *out;

			free(line);
			if (!answer)
				abort(); /* nothing is deferred without a client */
			if (!json_is_boolean(json_object_get(answer, "ok")))
				abort();
			out = gd_json_line(answer, &len);
			if (!out || len == 0 || out[len - 1] != '\n')
				abort();
			free(out);
			json_decref(answer);
		}
	}
	gd_linebuf_free(&lb);
	return 0;
}
