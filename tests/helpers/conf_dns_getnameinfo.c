/*
 * conf_dns_getnameinfo - getnameinfo from a green thread: names from the
 * hosts file, numeric forms, services by name, NI_NAMEREQD for an address
 * nobody knows (EAI_NONAME from the responder), and the errors for a short
 * buffer, a bad length and a bad family.
 */
#include "conf_dns.h"

static void reverse(const char *what, const struct sockaddr *sa, socklen_t salen,
                    socklen_t hostlen, int flags)
{
	char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
	int rc = getnameinfo(sa, salen, hostlen ? host : NULL, hostlen, serv, sizeof(serv),
	                     flags);

	if (rc == 0)
		printf("%s: host '%s' service '%s'\n", what, host, serv);
	else
		printf("%s: %s\n", what, eai_name(rc));
}

static void *lookups(void *arg)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(22)};
	struct sockaddr_in unknown = {.sin_family = AF_INET, .sin_port = htons(4242)};
	struct sockaddr_in one = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct sockaddr_in6 six = {.sin6_family = AF_INET6};
	struct sockaddr_in6 unknown6 = {.sin6_family = AF_INET6};
	struct sockaddr bad = {.sa_family = 12345};

	(void)arg;
	a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a6.sin6_addr = in6addr_loopback;
	inet_pton(AF_INET, "192.0.2.1", &unknown.sin_addr);
	inet_pton(AF_INET, "127.0.0.2", &one.sin_addr);
	inet_pton(AF_INET6, "fd00::2", &six.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::1", &unknown6.sin6_addr);

	reverse("127.0.0.1:80", (struct sockaddr *)&a4, sizeof(a4), NI_MAXHOST, 0);
	reverse("127.0.0.1:80 numeric", (struct sockaddr *)&a4, sizeof(a4), NI_MAXHOST,
	        NI_NUMERICHOST | NI_NUMERICSERV);
	reverse("127.0.0.1:80 udp", (struct sockaddr *)&a4, sizeof(a4), NI_MAXHOST, NI_DGRAM);
	reverse("[::1]:22", (struct sockaddr *)&a6, sizeof(a6), NI_MAXHOST, 0);
	reverse("[::1]:22 numeric host", (struct sockaddr *)&a6, sizeof(a6), NI_MAXHOST,
	        NI_NUMERICHOST);
	reverse("127.0.0.2:53", (struct sockaddr *)&one, sizeof(one), NI_MAXHOST, 0);
	reverse("127.0.0.2:53 NOFQDN", (struct sockaddr *)&one, sizeof(one), NI_MAXHOST,
	        NI_NOFQDN);
	reverse("[fd00::2]", (struct sockaddr *)&six, sizeof(six), NI_MAXHOST, 0);
	reverse("192.0.2.1", (struct sockaddr *)&unknown, sizeof(unknown), NI_MAXHOST, 0);
	reverse("192.0.2.1 NAMEREQD", (struct sockaddr *)&unknown, sizeof(unknown),
	        NI_MAXHOST, NI_NAMEREQD);
	reverse("[2001:db8::1]", (struct sockaddr *)&unknown6, sizeof(unknown6), NI_MAXHOST, 0);
	reverse("[2001:db8::1] NAMEREQD", (struct sockaddr *)&unknown6, sizeof(unknown6),
	        NI_MAXHOST, NI_NAMEREQD);
	reverse("service only", (struct sockaddr *)&a4, sizeof(a4), 0, 0);
	reverse("host buffer of 3", (struct sockaddr *)&a4, sizeof(a4), 3, 0);
	reverse("short sockaddr", (struct sockaddr *)&a4, 4, NI_MAXHOST, 0);
	reverse("bad family", &bad, sizeof(bad), NI_MAXHOST, 0);
	return NULL;
}

int main(void)
{
	return dns_run_in_thread(lookups);
}
