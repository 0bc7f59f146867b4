/*
 * libtls_blob.h - a module with BLOB_SIZE bytes of thread-local data, for
 * bench/bench_tls (the cost of a switch that swaps it) and nothing else:
 * libtls_blob0.c, libtls_blob1k.c and libtls_blob16k.c each set the size.
 */
__thread unsigned char tls_blob[BLOB_SIZE];

unsigned int tls_blob_touch(unsigned int v);

/* Use the data, so that a swap that lost it would be seen. */
unsigned int tls_blob_touch(unsigned int v)
{
	tls_blob[v % BLOB_SIZE] += 1;
	return tls_blob[v % BLOB_SIZE];
}
