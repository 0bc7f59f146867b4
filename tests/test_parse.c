/*
 * test_parse.c - the parsers the shim and greend share (libgreen/parse.c):
 * sizes, with every overflow edge, and GREEN_PATCH lists, with the partial
 * result a caller that must go on relies on.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "parse.h"

#define BIT(m) (1u << GREEN__MOD_##m)

static void test_parse_size(void **state)
{
	static const struct {
		const char *text;
		size_t value;
	} good[] = {
	    {"65536", 65536},      {"256K", 256 * 1024}, {"256k", 256 * 1024},
	    {"64KiB", 64 * 1024},  {"64kb", 64 * 1024},  {"1M", 1024 * 1024},
	    {"2MiB", 2 << 20},     {"1G", (size_t)1 << 30}, {"0", 0},
	    {"12B", 12},           {"1gib", (size_t)1 << 30}, {"007", 7},
	    /* the largest values that fit */
	    {"18446744073709551615", SIZE_MAX},
	    {"17179869183G", (size_t)17179869183 << 30},
	    {"17592186044415M", (size_t)17592186044415 << 20},
	};
	static const char *const bad[] = {
	    "", "K", "-5", "+5", " 5", "5 ", "12Q", "1.5M", "64KK", "1KiBB", "1iB",
	    "0x10", "1T", "5\n",
	    /* one past what fits, before and after the shift */
	    "18446744073709551616", "99999999999999999999", "17179869184G",
	    "17592186044416M", "9007199254740993M",
	};
	size_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1234;
		if (green__parse_size(good[i].text, &v) != 0)
			fail_msg("\"%s\" was rejected", good[i].text);
		if (v != good[i].value)
			fail_msg("\"%s\" gave %zu", good[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		v = 1234;
		if (green__parse_size(bad[i], &v) != -1 || errno != EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		if (v != 1234)
			fail_msg("\"%s\" changed the output on failure", bad[i]);
	}
	assert_int_equal(green__parse_size(NULL, &v), -1);
}

static void test_module_table(void **state)
{
	assert_int_equal(green__module_index("socket", 6), GREEN__MOD_SOCKET);
	assert_int_equal(green__module_index("os", 2), GREEN__MOD_OS);
	assert_int_equal(green__module_index("socketx", 6), GREEN__MOD_SOCKET);
	assert_int_equal(green__module_index("sock", 4), -1);
	assert_int_equal(green__module_index("SOCKET", 6), -1);
	assert_int_equal(green__module_index("", 0), -1);
	for (int i = 0; i < GREEN__NMODULES; i++)
		assert_int_equal(green__module_index(green__module_names[i],
		                                     strlen(green__module_names[i])), i);
}

static void test_patch_good(void **state)
{
	static const struct {
		const char *spec;
		unsigned mask;
	} good[] = {
	    {"all", GREEN__MODULES_ALL},
	    {"none", 0},
	    {"socket", BIT(SOCKET)},
	    {"socket,dns", BIT(SOCKET) | BIT(DNS)},
	    {"socket, dns", BIT(SOCKET) | BIT(DNS)},
	    {" socket\t,\tdns ", BIT(SOCKET) | BIT(DNS)},
	    {"all,-thread", GREEN__MODULES_ALL & ~BIT(THREAD)},
	    {" all , -thread ", GREEN__MODULES_ALL & ~BIT(THREAD)},
	    {"-all", 0},
	    {"all,none,time", BIT(TIME)},
	    {"time,-time", 0},
	    {"-time,time", BIT(TIME)},
	    {"socket,socket", BIT(SOCKET)},
	    {"select,time,thread,os", BIT(SELECT) | BIT(TIME) | BIT(THREAD) | BIT(OS)},
	};
	char err[256];
	unsigned m;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		m = 0xdead;
		strcpy(err, "junk");
		if (green__patch_parse(good[i].spec, &m, err, sizeof(err)) != 0)
			fail_msg("\"%s\" was rejected: %s", good[i].spec, err);
		if (m != good[i].mask)
			fail_msg("\"%s\" gave %#x, not %#x", good[i].spec, m, good[i].mask);
		assert_string_equal(err, "");
	}
}

static void test_patch_bad(void **state)
{
	static const struct {
		const char *spec;
		unsigned mask; /* what the valid items still give */
		const char *err;
	} bad[] = {
	    {"", 0, "empty module list"},
	    {" \t ", 0, "empty module list"},
	    {"socket,,dns", BIT(SOCKET) | BIT(DNS), "empty item in the module list"},
	    {",socket", BIT(SOCKET), "empty item in the module list"},
	    {"socket,", BIT(SOCKET), "empty item in the module list"},
	    {"socket, -", BIT(SOCKET), "empty item in the module list"},
	    {"fs", 0, "unknown module 'fs' (known: " GREEN__MODULES_KNOWN ")"},
	    {"socket,bogus,dns", BIT(SOCKET) | BIT(DNS),
	     "unknown module 'bogus' (known: " GREEN__MODULES_KNOWN ")"},
	    {"all,-bogus", GREEN__MODULES_ALL,
	     "unknown module 'bogus' (known: " GREEN__MODULES_KNOWN ")"},
	    {"-none", 0, "unknown module 'none' (known: " GREEN__MODULES_KNOWN ")"},
	    {"Socket", 0, "unknown module 'Socket' (known: " GREEN__MODULES_KNOWN ")"},
	    {"so cket", 0, "unknown module 'so cket' (known: " GREEN__MODULES_KNOWN ")"},
	    /* the first problem is the one reported */
	    {"a,,b", 0, "unknown module 'a' (known: " GREEN__MODULES_KNOWN ")"},
	};
	char err[256];
	unsigned m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = 0xdead;
		errno = 0;
		if (green__patch_parse(bad[i].spec, &m, err, sizeof(err)) != -1 || errno != EINVAL)
			fail_msg("\"%s\" was accepted", bad[i].spec);
		if (m != bad[i].mask)
			fail_msg("\"%s\" gave %#x, not %#x", bad[i].spec, m, bad[i].mask);
		assert_string_equal(err, bad[i].err);
	}
}

static void test_patch_edges(void **state)
{
	char longname[300], err[128], tiny[8];
	unsigned m;

	/* A long unknown name is cut in the message, which stays terminated. */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(green__patch_parse(longname, &m, err, sizeof(err)), -1);
	assert_true(strlen(err) < sizeof(err));
	assert_non_null(strstr(err, "'xxxxxxxx"));
	assert_int_equal(green__patch_parse("fs", &m, tiny, sizeof(tiny)), -1);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	/* No buffer: the result alone. */
	assert_int_equal(green__patch_parse("socket,fs", &m, NULL, 0), -1);
	assert_int_equal(m, BIT(SOCKET));
	assert_int_equal(green__patch_parse("dns", &m, NULL, 0), 0);
	assert_int_equal(m, BIT(DNS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_module_table),
		cmocka_unit_test(test_patch_good),
		cmocka_unit_test(test_patch_bad),
		cmocka_unit_test(test_patch_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
