/*
 * dns.c - the "dns" module.  glibc's resolver calls its own socket, poll and
 * recvfrom internally, out of reach of any interposition, so the whole
 * resolver call runs on a small pool of real threads while the calling
 * greenlet parks; the result comes back through the hub's ev_async
 * (green__remote_*).  errno and h_errno are carried back, since they are
 * per thread.  When no pool thread can be created and none exists, the
 * caller runs the lookup itself, blocking its hub for that long: a lookup
 * that waits for a thread that will never come would park for ever.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#define POOL_MAX 4

struct dns_job {
	struct dns_job *next;
	void (*run)(struct dns_job *job);
	struct green__remote *remote;
	int err, herr;
	bool rejected; /* no pool thread: the caller runs it */
	/* arguments and results, per call */
	const char *node, *service, *name;
	const struct addrinfo *hints;
	struct addrinfo **res;
	const struct sockaddr *sa;
	socklen_t salen;
	char *host, *serv;
	socklen_t hostlen, servlen;
	int flags, af, rc;
	const void *addr;
	socklen_t len;
	struct hostent *ret, **result;
	char *buf;
	size_t buflen;
	int *h_errnop;
};

static int pool_lock;
static struct dns_job *queue_head, *queue_tail;
static sem_t queue_sem;
static bool sem_ready;
static int threads, idle;

static void *worker(void *arg)
{
	shim_passthrough = 1;
	for (;;) {
		struct dns_job *job;

		while (SHIM_REAL(sem_wait)(&queue_sem) < 0 && errno == EINTR)
			;
		green__spin_lock(&pool_lock);
		idle--;
		job = queue_head;
		if (job) {
			queue_head = job->next;
			if (!queue_head)
				queue_tail = NULL;
		}
		green__spin_unlock(&pool_lock);
		if (job) {
			errno = 0;
			h_errno = 0;
			job->run(job);
			job->err = errno;
			job->herr = h_errno;
			green__remote_post(job->remote, 0);
		}
		green__spin_lock(&pool_lock);
		idle++;
		green__spin_unlock(&pool_lock);
	}
	return NULL;
}

/*
 * No pool thread could be created and none exists: nobody will ever run
 * what is queued.  Every job in the queue goes back to its caller, which
 * runs the lookup itself (on its own hub's thread, blocking it, which is
 * better than parking for ever).  Called with pool_lock held; returns the
 * jobs, which the caller hands back once the lock is dropped.
 */
static struct dns_job *orphans_take(void)
{
	struct dns_job *all = queue_head;

	queue_head = queue_tail = NULL;
	return all;
}

static void orphans_return(struct green_hub *h, struct dns_job *all, struct dns_job *mine)
{
	struct dns_job *next;

	for (struct dns_job *j = all; j; j = next) {
		next = j->next;
		j->rejected = true;
		if (j == mine) {
			/* Not parked yet: end the wait first, so that the
			 * post only drops the last reference. */
			green__remote_end(h, j->remote);
			green__remote_post(j->remote, 0);
		} else {
			green__remote_post(j->remote, 0);
		}
	}
}

/* Start one more pool thread; false when the system would not give one
 * (EAGAIN under RLIMIT_NPROC or the kernel's thread limit, ENOMEM). */
static bool pool_grow(void)
{
	pthread_t tid;
	pthread_attr_t attr;
	sigset_t all;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return false;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Every signal blocked: a pool thread outlives the mask its creator
	 * had, and a signal the program's threads all block later (for a
	 * sigwait thread) must stay pending for them, not take its default
	 * action here. */
	sigfillset(&all);
	pthread_attr_setsigmask_np(&attr, &all);
	shim_passthrough++;
	rc = SHIM_REAL(pthread_create)(&tid, &attr, worker, NULL);
	shim_passthrough--;
	pthread_attr_destroy(&attr);
	if (rc != 0)
		SHIM_DEBUG("dns: no pool thread (%s): the caller resolves itself",
		           strerror(rc));
	return rc == 0;
}

/* Queue job and park until a pool thread has run it.  Returns 0, or -1
 * when no thread could be had (the caller then runs the call itself). */
static int submit(struct green_hub *h, struct dns_job *job)
{
	bool spawn = false;

	if (green__remote_begin(h, &job->remote) < 0)
		return -1;
	job->rejected = false;
	green__spin_lock(&pool_lock);
	if (!sem_ready) {
		SHIM_REAL(sem_init)(&queue_sem, 0, 0);
		sem_ready = true;
	}
	job->next = NULL;
	if (queue_tail)
		queue_tail->next = job;
	else
		queue_head = job;
	queue_tail = job;
	if (idle == 0 && threads < POOL_MAX) {
		threads++;
		idle++;
		spawn = true;
	}
	green__spin_unlock(&pool_lock);
	if (spawn && !pool_grow()) {
		struct dns_job *orphans = NULL;

		green__spin_lock(&pool_lock);
		threads--;
		idle--;
		/* Other submitters may have queued behind ours, counting on
		 * the thread we promised: with no thread at all, they are
		 * handed back too. */
		if (threads == 0)
			orphans = orphans_take();
		green__spin_unlock(&pool_lock);
		if (orphans) {
			orphans_return(h, orphans, job);
			return -1;
		}
	}
	SHIM_REAL(sem_post)(&queue_sem);
	/* Not cancellable: the pool thread writes into this greenlet's
	 * stack, so we wait for it whatever happens. */
	green__park(h, GREEN_WAIT_OTHER, job->remote, GREEN_FOREVER,
	            GREEN__PARK_NOCANCEL);
	green__remote_end(h, job->remote);
	if (job->rejected)
		return -1;
	errno = job->err;
	h_errno = job->herr;
	return 0;
}

void shim_dns_after_fork(void)
{
	/* The pool's threads did not come along into the child. */
	pool_lock = 0;
	queue_head = queue_tail = NULL;
	threads = idle = 0;
	sem_ready = false;
}

static void run_getaddrinfo(struct dns_job *j)
{
	j->rc = SHIM_REAL(getaddrinfo)(j->node, j->service, j->hints, j->res);
}

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_getaddrinfo, .node = node, .service = service,
	                    .hints = hints, .res = res};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(getaddrinfo)(node, service, hints, res);
	return j.rc;
}

static void run_getnameinfo(struct dns_job *j)
{
	j->rc = SHIM_REAL(getnameinfo)(j->sa, j->salen, j->host, j->hostlen, j->serv,
	                               j->servlen, j->flags);
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_getnameinfo, .sa = sa, .salen = salen,
	                    .host = host, .hostlen = hostlen, .serv = serv,
	                    .servlen = servlen, .flags = flags};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
	return j.rc;
}

static void run_gethostbyname(struct dns_job *j)
{
	j->ret = SHIM_REAL(gethostbyname)(j->name);
}

struct hostent *gethostbyname(const char *name)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyname, .name = name};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyname)(name);
	return j.ret;
}

static void run_gethostbyname2(struct dns_job *j)
{
	j->ret = SHIM_REAL(gethostbyname2)(j->name, j->af);
}

struct hostent *gethostbyname2(const char *name, int af)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyname2, .name = name, .af = af};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyname2)(name, af);
	return j.ret;
}

static void run_gethostbyaddr(struct dns_job *j)
{
	j->ret = SHIM_REAL(gethostbyaddr)(j->addr, j->len, j->af);
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyaddr, .addr = addr, .len = len, .af = type};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyaddr)(addr, len, type);
	return j.ret;
}

static void run_gethostbyname_r(struct dns_job *j)
{
	j->rc = SHIM_REAL(gethostbyname_r)(j->name, j->ret, j->buf, j->buflen,
	                                   j->result, j->h_errnop);
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                    struct hostent **result, int *h_errnop)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyname_r, .name = name, .ret = ret,
	                    .buf = buf, .buflen = buflen, .result = result,
	                    .h_errnop = h_errnop};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
	return j.rc;
}

static void run_gethostbyname2_r(struct dns_job *j)
{
	j->rc = SHIM_REAL(gethostbyname2_r)(j->name, j->af, j->ret, j->buf, j->buflen,
	                                    j->result, j->h_errnop);
}

int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                     size_t buflen, struct hostent **result, int *h_errnop)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyname2_r, .name = name, .af = af,
	                    .ret = ret, .buf = buf, .buflen = buflen,
	                    .result = result, .h_errnop = h_errnop};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result,
		                                   h_errnop);
	return j.rc;
}

static void run_gethostbyaddr_r(struct dns_job *j)
{
	j->rc = SHIM_REAL(gethostbyaddr_r)(j->addr, j->len, j->af, j->ret, j->buf,
	                                   j->buflen, j->result, j->h_errnop);
}

int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                    char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
	struct green_hub *h = shim_hub_for(SHIM_DNS);
	struct dns_job j = {.run = run_gethostbyaddr_r, .addr = addr, .len = len,
	                    .af = type, .ret = ret, .buf = buf, .buflen = buflen,
	                    .result = result, .h_errnop = h_errnop};

	if (!h || submit(h, &j) < 0)
		return SHIM_REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result,
		                                  h_errnop);
	return j.rc;
}
