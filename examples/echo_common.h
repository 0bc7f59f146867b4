/*
 * echo_common.h - command line, fd limit and listening socket shared by the
 * echo servers, so that they differ only in how they serve connections.
 * Header-only because every example is built from one .c file.
 */
#ifndef ECHO_COMMON_H
#define ECHO_COMMON_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_DEFAULT_ADDR	"127.0.0.1"
#define ECHO_DEFAULT_PORT	"7000"
#define ECHO_BACKLOG		65535	/* the kernel caps it at somaxconn */
#define ECHO_BUF_SIZE		16384

struct echo_opts {
	const char	*addr;		/* NULL: every local address */
	const char	*port;
	bool		 quiet;
};

static inline void
echo_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-a ADDR] [-p PORT] [-q]\n"
	    "  -a ADDR  address to listen on (default %s; '*' = all)\n"
	    "  -p PORT  port (default %s; 0 = let the kernel pick)\n"
	    "  -q       quiet: report only fatal errors\n",
	    prog, ECHO_DEFAULT_ADDR, ECHO_DEFAULT_PORT);
	exit(2);
}

static inline void
echo_parse_args(int argc, char **argv, struct echo_opts *o)
{
	int ch;

	o->addr = ECHO_DEFAULT_ADDR;
	o->port = ECHO_DEFAULT_PORT;
	o->quiet = false;
	while ((ch = getopt(argc, argv, "a:p:qh")) != -1) {
		switch (ch) {
		case 'a':
			o->addr = strcmp(optarg, "*") == 0 ? NULL : optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		default:
			echo_usage(argv[0]);
		}
	}
	if (optind != argc)
		echo_usage(argv[0]);
}

/*
 * Thousands of connections need thousands of fds; the soft limit is often
 * 1024 while the hard one is far higher, and raising soft to hard needs no
 * privilege.
 */
static inline void
echo_raise_nofile(bool quiet)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1 && !quiet)
		fprintf(stderr, "setrlimit(RLIMIT_NOFILE): %s\n",
		    strerror(errno));
}

/*
 * Bind the first address getaddrinfo offers, listen, and print
 * "listening on ADDR:PORT" (IPv6 as "[ADDR]:PORT") with the port the kernel
 * actually chose; tests wait for that line. Exits on failure.
 */
static inline int
echo_listen(const struct echo_opts *o)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	int fd = -1, err, on = 1, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((err = getaddrinfo(o->addr, o->port, &hints, &res)) != 0) {
		fprintf(stderr, "%s port %s: %s\n", o->addr ? o->addr : "*",
		    o->port, gai_strerror(err));
		exit(1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		/* Several instances under one supervisor share the port and
		 * the kernel spreads connections over them. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, ECHO_BACKLOG) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		fprintf(stderr, "listen on %s port %s: %s\n",
		    o->addr ? o->addr : "*", o->port, strerror(saved));
		exit(1);
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		fprintf(stderr, "cannot name the listening socket\n");
		exit(1);
	}
	if (ss.ss_family == AF_INET6)
		printf("listening on [%s]:%s\n", host, serv);
	else
		printf("listening on %s:%s\n", host, serv);
	fflush(stdout);
	return fd;
}

/* Echo traffic is request/response: do not let Nagle hold back a tail. */
static inline void
echo_nodelay(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

#endif /* ECHO_COMMON_H */
