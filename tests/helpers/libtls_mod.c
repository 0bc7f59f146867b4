/*
 * libtls_mod.c - a module with thread-local data of its own, which
 * conf_tls_dlopen loads with dlopen: its block is dynamic TLS (glibc makes
 * it on a thread's first access), not part of the program's static TLS.
 */
__thread int tls_mod_value = 5;
__thread char tls_mod_zero[512];

int tls_mod_get(void);
void tls_mod_set(int v);
int tls_mod_zeroed(void);

int tls_mod_get(void)
{
	return tls_mod_value;
}

void tls_mod_set(int v)
{
	tls_mod_value = v;
	tls_mod_zero[v & 511] = 1;
}

/* Whether this thread's .tbss of the module is still all zero. */
int tls_mod_zeroed(void)
{
	for (int i = 0; i < 512; i++)
		if (tls_mod_zero[i])
			return 0;
	return 1;
}
