/*
 * test_addr.c - listen addresses: what parses (and to what), the reason
 * given for what does not, and opening a Unix socket over a stale file
 * while refusing one somebody still listens on.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../greend/addr.h"

static void test_parse_good(void **state)
{
	static const char *const good[][2] = {
		{ "127.0.0.1:9464", "127.0.0.1:9464" },
		{ "0.0.0.0:1", "0.0.0.0:1" },
		{ "[::1]:9464", "[::1]:9464" },
		{ "[::]:65535", "[::]:65535" },
		{ "unix:/run/greend/http.sock", "unix:/run/greend/http.sock" },
	};
	struct gd_addr a;
	char err[128], buf[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(gd_addr_parse(good[i][0], &a, err, sizeof(err)), 0);
		gd_addr_format(&a, buf, sizeof(buf));
		assert_string_equal(buf, good[i][1]);
	}
	assert_int_equal(gd_addr_parse("[::1]:80", &a, err, sizeof(err)), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_false(a.is_unix);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[][2] = {
		{ "localhost:9464", "the host must be a numeric IPv4 address (greend resolves no names)" },
		{ "127.0.0.1:0", "the port must be a number from 1 to 65535" },
		{ "127.0.0.1:65536", "the port must be a number from 1 to 65535" },
		{ "127.0.0.1:+80", "the port must be a number from 1 to 65535" },
		{ "127.0.0.1:", "the port must be a number from 1 to 65535" },
		{ "9464", "expected \"HOST:PORT\", \"[IPV6]:PORT\" or \"unix:PATH\"" },
		{ ":9464", "expected \"HOST:PORT\", \"[IPV6]:PORT\" or \"unix:PATH\"" },
		{ "[::1]", "expected \"[IPV6]:PORT\"" },
		{ "[]:80", "expected \"[IPV6]:PORT\"" },
		{ "[1.2.3.4]:80", "not a numeric IPv6 address between the brackets" },
		{ "::1:9464", "an IPv6 address needs brackets: \"[::1]:PORT\"" },
		{ "unix:", "unix: needs an absolute path" },
		{ "unix:rel/x.sock", "unix: needs an absolute path" },
	};
	char err[128], longpath[200];
	struct gd_addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(gd_addr_parse(bad[i][0], &a, err, sizeof(err)), -1);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(err, bad[i][1]);
	}
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memcpy(longpath, "unix:/", 6);
	assert_int_equal(gd_addr_parse(longpath, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "unix socket path longer than 107 bytes");
}

static void test_listen_unix(void **state)
{
	char dir[] = "/tmp/test_addr.XXXXXX", text[128], err[256];
	struct gd_addr a;
	struct stat st;
	int fd, fd2;

	assert_non_null(mkdtemp(dir));
	snprintf(text, sizeof(text), "unix:%s/h.sock", dir);
	assert_int_equal(gd_addr_parse(text, &a, err, sizeof(err)), 0);
	fd = gd_addr_listen(&a, 8, 0640, -1, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(stat(text + 5, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	/* Somebody listens: refused, and the file is left alone. */
	err[0] = '\0';
	assert_int_equal(gd_addr_listen(&a, 8, 0640, -1, err, sizeof(err)), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "already listening"));
	close(fd);
	/* Nobody does any more: the stale file is replaced. */
	fd2 = gd_addr_listen(&a, 8, 0600, -1, err, sizeof(err));
	assert_true(fd2 >= 0);
	close(fd2);
	unlink(text + 5);
	/* A file that is not a socket is never removed. */
	fd = creat(text + 5, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gd_addr_listen(&a, 8, 0600, -1, err, sizeof(err)), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(stat(text + 5, &st), 0);
	unlink(text + 5);
	rmdir(dir);
}

static void test_listen_tcp_in_use(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct gd_addr a;
	char text[64], err[256];
	int fd;

	assert_int_equal(gd_addr_parse("127.0.0.1:1", &a, err, sizeof(err)), 0);
	((struct sockaddr_in *)&a.ss)->sin_port = 0;
	fd = gd_addr_listen(&a, 8, 0, -1, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(text, sizeof(text), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(gd_addr_parse(text, &a, err, sizeof(err)), 0);
	assert_int_equal(gd_addr_listen(&a, 8, 0, -1, err, sizeof(err)), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "bind"));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_listen_unix),
		cmocka_unit_test(test_listen_tcp_in_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
