/*
 * conf_dns_many - 100 threads call getaddrinfo("localhost") at once: every
 * lookup succeeds with the hosts file's answer; greened, the process keeps
 * few OS threads (its own, plus the dns module's pool of at most 4).
 */
#include "conf_dns.h"

#define N 100

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static bool started;
static int ok, wrong, most;

static void *lookup(void *arg)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc, n;
	bool right;

	pthread_mutex_lock(&lock);
	while (!started)
		pthread_cond_wait(&go, &lock);
	pthread_mutex_unlock(&lock);
	rc = getaddrinfo("localhost", "80", &hints, &res);
	right = rc == 0 && res && res->ai_family == AF_INET &&
	        ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	if (res)
		freeaddrinfo(res);
	n = os_threads();
	pthread_mutex_lock(&lock);
	if (right)
		ok++;
	else
		wrong++;
	if (n > most)
		most = n;
	pthread_mutex_unlock(&lock);
	return arg;
}

int main(void)
{
	pthread_t th[N];

	dns_hermetic();
	for (int i = 0; i < N; i++)
		die_rc("pthread_create", pthread_create(&th[i], NULL, lookup, NULL));
	pthread_mutex_lock(&lock);
	started = true;
	pthread_cond_broadcast(&go);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < N; i++)
		die_rc("pthread_join", pthread_join(th[i], NULL));
	printf("lookups right %d wrong %d\n", ok, wrong);
	printf("# at most %d OS threads\n", most);
	if (greened())
		CHECK("OS threads", most >= 1 && most <= 6);
	else
		CHECK("OS threads", most > 1);
	dns_hermetic_end();
	return conf_failed;
}
