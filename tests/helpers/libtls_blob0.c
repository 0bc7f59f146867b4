/* libtls_blob0.c - 8 bytes of thread-local data (libtls_blob.h). */
#define BLOB_SIZE 8
#include "libtls_blob.h"
