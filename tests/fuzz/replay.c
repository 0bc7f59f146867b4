/*
 * replay.c - a main for the fuzz targets without libFuzzer: every file in
 * the corpus directories given (default: tests/fuzz/corpus/TARGET, TARGET
 * taken from this program's name, replay_TARGET) goes through
 * LLVMFuzzerTestOneInput once.  A crash, a sanitizer report or a leak
 * fails the run like any other test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	/* Exactly N bytes, as libFuzzer hands them: no terminator to lean on. */
	if (n) {
		uint8_t *exact = malloc(n);

		if (!exact) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, n);
		free(buf);
		buf = exact;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int replay_dir(const char *dir, int *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), rc = 0;

	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0)
				rc = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/'), *target;
	char dir[512];
	int count = 0, rc = 0;

	base = base ? base + 1 : argv[0];
	target = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay_dir(argv[i], &count) < 0)
				rc = 1;
	} else {
		snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s", target);
		if (replay_dir(dir, &count) < 0)
			rc = 1;
	}
	if (count == 0) {
		fprintf(stderr, "%s: no corpus files replayed\n", base);
		rc = 1;
	}
	printf("%s: %d inputs replayed\n", base, count);
	return rc;
}
