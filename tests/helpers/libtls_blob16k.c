/* libtls_blob16k.c - 16384 bytes of thread-local data (libtls_blob.h). */
#define BLOB_SIZE 16384
#include "libtls_blob.h"
