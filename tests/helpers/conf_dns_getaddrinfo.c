/*
 * conf_dns_getaddrinfo - getaddrinfo from a green thread: the hosts file,
 * numeric hosts (AI_NUMERICHOST), the passive wildcard, services by name
 * and number, AI_CANONNAME, a name under .invalid (EAI_NONAME from the
 * responder), and the errors for bad flags, family, socket type and service.
 */
#include "conf_dns.h"

static void lookup(const char *what, const char *node, const char *service, int family,
                   int socktype, int flags)
{
	struct addrinfo hints, *res = NULL;
	char line[128];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = socktype;
	hints.ai_flags = flags;
	rc = getaddrinfo(node, service, &hints, &res);
	printf("%s: %s\n", what, eai_name(rc));
	if (rc != 0)
		return;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		sa_text(ai->ai_addr, line, sizeof(line));
		printf("%s:   %s socktype %d protocol %d%s%s\n", what, line, ai->ai_socktype,
		       ai->ai_protocol, ai->ai_canonname ? " canonname " : "",
		       ai->ai_canonname ? ai->ai_canonname : "");
	}
	freeaddrinfo(res);
}

static void *lookups(void *arg)
{
	struct addrinfo *res = NULL;

	(void)arg;
	lookup("localhost inet stream 80", "localhost", "80", AF_INET, SOCK_STREAM, 0);
	lookup("localhost any stream", "localhost", "http", AF_UNSPEC, SOCK_STREAM, 0);
	lookup("localhost inet6", "localhost", NULL, AF_INET6, SOCK_DGRAM, 0);
	lookup("localhost every socket type", "localhost", "7", AF_INET, 0, 0);
	lookup("one by name, canonical", "one", "80", AF_INET, SOCK_STREAM, AI_CANONNAME);
	lookup("six by name", "six.conf-dns.test", NULL, AF_INET6, SOCK_STREAM, 0);
	lookup("six as inet", "six.conf-dns.test", NULL, AF_INET, SOCK_STREAM, 0);
	lookup("127.0.0.1 numeric", "127.0.0.1", "443", AF_UNSPEC, SOCK_STREAM,
	       AI_NUMERICHOST | AI_NUMERICSERV);
	lookup("::1 numeric", "::1", "443", AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST);
	lookup("localhost with AI_NUMERICHOST", "localhost", NULL, AF_UNSPEC, SOCK_STREAM,
	       AI_NUMERICHOST);
	lookup("passive", NULL, "8080", AF_INET, SOCK_STREAM, AI_PASSIVE);
	lookup("passive inet6", NULL, "8080", AF_INET6, SOCK_STREAM, AI_PASSIVE);
	lookup("not passive", NULL, "8080", AF_INET, SOCK_STREAM, 0);
	lookup("v4-mapped", "127.0.0.1", NULL, AF_INET6, SOCK_STREAM, AI_V4MAPPED);
	lookup("nothing.invalid", "nothing.invalid", "80", AF_UNSPEC, SOCK_STREAM, 0);
	lookup("nothing.invalid as inet", "nothing.invalid", NULL, AF_INET, SOCK_STREAM, 0);
	lookup("single label not in hosts", "nosuchhost", NULL, AF_INET, SOCK_STREAM, 0);
	lookup("bad flags", "localhost", NULL, AF_UNSPEC, SOCK_STREAM, 0x7fff0000);
	lookup("bad family", "localhost", NULL, 12345, SOCK_STREAM, 0);
	lookup("bad socket type", "localhost", NULL, AF_INET, 12345, 0);
	lookup("unknown service", "localhost", "no-such-service", AF_INET, SOCK_STREAM, 0);
	lookup("service name with AI_NUMERICSERV", "localhost", "http", AF_INET,
	       SOCK_STREAM, AI_NUMERICSERV);
	lookup("no node no service", NULL, NULL, AF_INET, SOCK_STREAM, 0);
	printf("NULL hints: %s\n", eai_name(getaddrinfo("127.0.0.1", "1", NULL, &res)));
	if (res)
		freeaddrinfo(res);
	return NULL;
}

int main(void)
{
	return dns_run_in_thread(lookups);
}
