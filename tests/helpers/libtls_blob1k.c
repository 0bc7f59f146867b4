/* libtls_blob1k.c - 1024 bytes of thread-local data (libtls_blob.h). */
#define BLOB_SIZE 1024
#include "libtls_blob.h"
