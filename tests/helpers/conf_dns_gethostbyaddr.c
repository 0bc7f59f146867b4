/*
 * conf_dns_gethostbyaddr - gethostbyaddr and gethostbyaddr_r from a green
 * thread: addresses in the hosts file (both families), an address nobody
 * knows (HOST_NOT_FOUND from the responder), a bad length, a buffer too
 * small (ERANGE).
 */
#include "conf_dns.h"

static void by_addr(const char *text, int af, socklen_t len)
{
	unsigned char addr[16];
	char what[128];

	inet_pton(af, text, addr);
	snprintf(what, sizeof(what), "gethostbyaddr(%s, %u)", text, len);
	h_errno = 0;
	show_hostent(what, gethostbyaddr(addr, len, af));
	printf("%s: h_errno %s\n", what, herr_name(h_errno));
}

static void by_addr_r(const char *text, int af, size_t buflen)
{
	unsigned char addr[16];
	char what[128], buf[4096];
	struct hostent he, *res = (struct hostent *)1;
	int herr = -1, rc;

	inet_pton(af, text, addr);
	rc = gethostbyaddr_r(addr, af == AF_INET ? 4 : 16, af, &he, buf, buflen, &res, &herr);
	snprintf(what, sizeof(what), "gethostbyaddr_r(%s, buffer %zu)", text, buflen);
	show_hostent_r(what, rc, herr, res);
}

static void *lookups(void *arg)
{
	(void)arg;
	by_addr("127.0.0.1", AF_INET, 4);
	by_addr("127.0.0.2", AF_INET, 4);
	by_addr("::1", AF_INET6, 16);
	by_addr("fd00::2", AF_INET6, 16);
	by_addr("192.0.2.1", AF_INET, 4);
	by_addr("2001:db8::1", AF_INET6, 16);
	by_addr("127.0.0.1", AF_INET, 3);
	by_addr_r("127.0.0.1", AF_INET, 4096);
	by_addr_r("127.0.0.2", AF_INET, 4096);
	by_addr_r("fd00::2", AF_INET6, 4096);
	by_addr_r("192.0.2.1", AF_INET, 4096);
	by_addr_r("127.0.0.2", AF_INET, 8);
	return NULL;
}

int main(void)
{
	return dns_run_in_thread(lookups);
}
