/*
 * conf_dns.h - a resolver of the conf_dns_* programs' own, so that their
 * answers are the same on every machine and no query leaves it.
 *
 * As root, dns_hermetic() moves the process into a private mount and
 * network namespace (only lo, brought up), puts its own hosts, resolv.conf
 * and nsswitch.conf over /etc's, and runs a responder on 127.0.0.1:53 that
 * answers every query with NXDOMAIN, as a real resolver answers for a name
 * under .invalid (RFC 6761).  It must run before any thread exists: a
 * multi-threaded process cannot unshare its mount namespace.  Where that
 * cannot be done (not root, no namespaces) it says "skipped" and why, the
 * same natively and greened, and the program exits 0.
 */
#ifndef CONF_DNS_H
#define CONF_DNS_H

#include "conf_common.h"

#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DNS_HOSTS                                                              \
	"127.0.0.1 localhost\n"                                                \
	"::1 localhost ip6-localhost\n"                                        \
	"127.0.0.2 one.conf-dns.test one alias-one\n"                          \
	"fd00::2 six.conf-dns.test six\n"
#define DNS_RESOLV "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n"
#define DNS_NSSWITCH "hosts: files dns\nservices: files\nprotocols: files\n"

static pid_t dns_responder_pid __attribute__((unused));
static char dns_dir[64] __attribute__((unused));

static inline int dns_put(const char *name, const char *text)
{
	char path[128];
	int fd;
	ssize_t len = (ssize_t)strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dns_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)len) != len) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static inline int dns_over(const char *name, const char *target)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dns_dir, name);
	return mount(path, target, NULL, MS_BIND, NULL);
}

static inline int dns_lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc;
}

/* Each query back as its own answer: the header says response, recursion
 * available, NXDOMAIN; the question (and any OPT record) stays as it was. */
static inline void dns_respond(int s)
{
	unsigned char buf[1500];

	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);

		if (n < 12)
			continue;
		buf[2] = (unsigned char)((buf[2] & 0x79) | 0x80); /* QR, keep RD and opcode */
		buf[3] = 0x83;                                    /* RA, RCODE 3 */
		sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
	}
}

static inline int dns_responder_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	fflush(stdout);
	dns_responder_pid = fork();
	if (dns_responder_pid < 0)
		return -1;
	if (dns_responder_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dns_respond(s);
		_exit(0);
	}
	close(s);
	return 0;
}

static inline void dns_hermetic_end(void)
{
	char path[128];

	if (dns_responder_pid > 0) {
		kill(dns_responder_pid, SIGKILL);
		waitpid(dns_responder_pid, NULL, 0);
		dns_responder_pid = 0;
	}
	/* The bind mounts go with the namespace; the files do not. */
	for (const char *const *f = (const char *const[]){"hosts", "resolv.conf",
	                                                   "nsswitch.conf", NULL};
	     *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", dns_dir, *f);
		unlink(path);
	}
	rmdir(dns_dir);
}

static inline void dns_skip(const char *why)
{
	printf("skipped: %s\n", why);
	exit(0);
}

static inline void dns_hermetic(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		dns_skip("a private resolver needs root (namespaces)");
	if (unshare(CLONE_NEWNS | CLONE_NEWNET) < 0)
		dns_skip("no private mount and network namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		dns_skip("cannot make the mounts private");
	snprintf(dns_dir, sizeof(dns_dir), "/tmp/conf_dns.XXXXXX");
	if (!mkdtemp(dns_dir))
		dns_skip("no temporary directory");
	if (dns_put("hosts", DNS_HOSTS) < 0 || dns_put("resolv.conf", DNS_RESOLV) < 0 ||
	    dns_put("nsswitch.conf", DNS_NSSWITCH) < 0 ||
	    dns_over("hosts", "/etc/hosts") < 0 ||
	    dns_over("resolv.conf", "/etc/resolv.conf") < 0 ||
	    dns_over("nsswitch.conf", "/etc/nsswitch.conf") < 0) {
		dns_hermetic_end();
		dns_skip("cannot put the resolver files in place");
	}
	if (dns_lo_up() < 0 || dns_responder_start() < 0) {
		dns_hermetic_end();
		dns_skip("no loopback DNS responder");
	}
}

static inline const char *eai_name(int rc)
{
	switch (rc) {
	case 0: return "0";
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_OVERFLOW: return "EAI_OVERFLOW";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
	default: return "EAI_?";
	}
}

static inline const char *herr_name(int h)
{
	switch (h) {
	case 0: return "0";
	case HOST_NOT_FOUND: return "HOST_NOT_FOUND";
	case TRY_AGAIN: return "TRY_AGAIN";
	case NO_RECOVERY: return "NO_RECOVERY";
	case NO_DATA: return "NO_DATA";
	case NETDB_INTERNAL: return "NETDB_INTERNAL";
	default: return "h_errno ?";
	}
}

/* One line for a sockaddr: family, address, port. */
static inline void sa_text(const struct sockaddr *sa, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "inet %s port %u", a, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "inet6 %s port %u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(out, len, "family %d", sa->sa_family);
	}
}

/* A hostent as lines: name, aliases, type, addresses. */
static inline void show_hostent(const char *what, const struct hostent *he)
{
	char a[INET6_ADDRSTRLEN];

	if (!he) {
		printf("%s: NULL\n", what);
		return;
	}
	printf("%s: name %s type %s length %d\n", what, he->h_name,
	       he->h_addrtype == AF_INET ? "AF_INET" : he->h_addrtype == AF_INET6 ? "AF_INET6" : "?",
	       he->h_length);
	for (char **al = he->h_aliases; al && *al; al++)
		printf("%s:   alias %s\n", what, *al);
	for (char **ad = he->h_addr_list; ad && *ad; ad++)
		printf("%s:   address %s\n", what,
		       inet_ntop(he->h_addrtype, *ad, a, sizeof(a)) ? a : "?");
}

/* What a gethostby*_r call gave: its return, h_errno, the entry. */
static inline void show_hostent_r(const char *what, int rc, int herr,
                                  const struct hostent *res)
{
	printf("%s: returns %s, h_errno %s\n", what, rc ? en(rc) : "0",
	       herr == -1 ? "untouched" : herr_name(herr));
	if (rc == 0)
		show_hostent(what, res);
}

/* The lookups in one green thread (another parked beside it, so that the
 * greened calls take their parked paths), in the private resolver. */
static inline int dns_run_in_thread(void *(*lookups)(void *))
{
	pthread_t t;

	dns_hermetic();
	companion_start();
	if (pthread_create(&t, NULL, lookups, NULL) != 0)
		return 1;
	pthread_join(t, NULL);
	companion_stop();
	dns_hermetic_end();
	return 0;
}

#endif
