/*
 * conf_dns_gethostbyname - gethostbyname, gethostbyname2, gethostbyname_r
 * and gethostbyname2_r from a green thread: the hosts file with aliases,
 * numeric names, both families, a name under .invalid (HOST_NOT_FOUND from
 * the responder), a buffer too small (ERANGE), a bad family.
 */
#include "conf_dns.h"

static void by_name(const char *name)
{
	char what[128];

	snprintf(what, sizeof(what), "gethostbyname(%s)", name);
	h_errno = 0;
	show_hostent(what, gethostbyname(name));
	printf("%s: h_errno %s\n", what, herr_name(h_errno));
}

static void by_name2(const char *name, int af)
{
	char what[128];

	snprintf(what, sizeof(what), "gethostbyname2(%s, %d)", name, af);
	h_errno = 0;
	errno = 0;
	show_hostent(what, gethostbyname2(name, af));
	printf("%s: h_errno %s%s\n", what, herr_name(h_errno),
	       h_errno == NETDB_INTERNAL ? en(errno) : "");
}

static void by_name_r(const char *name, int af, size_t buflen)
{
	char what[128], buf[4096];
	struct hostent he, *res = (struct hostent *)1;
	int herr = -1, rc;

	if (af)
		rc = gethostbyname2_r(name, af, &he, buf, buflen, &res, &herr);
	else
		rc = gethostbyname_r(name, &he, buf, buflen, &res, &herr);
	snprintf(what, sizeof(what), "gethostbyname%s_r(%s, %d, buffer %zu)", af ? "2" : "",
	         name, af, buflen);
	show_hostent_r(what, rc, herr, res);
}

static void *lookups(void *arg)
{
	(void)arg;
	by_name("localhost");
	by_name("one");
	by_name("alias-one");
	by_name("127.0.0.1");
	by_name("nothing.invalid");
	by_name2("localhost", AF_INET6);
	by_name2("six.conf-dns.test", AF_INET6);
	by_name2("six.conf-dns.test", AF_INET);
	by_name2("::1", AF_INET6);
	by_name2("nothing.invalid", AF_INET6);
	by_name2("localhost", 12345);
	by_name_r("localhost", 0, 4096);
	by_name_r("one.conf-dns.test", 0, 4096);
	by_name_r("nothing.invalid", 0, 4096);
	by_name_r("localhost", 0, 8);
	by_name_r("localhost", AF_INET6, 4096);
	by_name_r("nothing.invalid", AF_INET6, 4096);
	by_name_r("six", AF_INET6, 8);
	return NULL;
}

int main(void)
{
	return dns_run_in_thread(lookups);
}
