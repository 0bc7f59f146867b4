/*
 * conf_thread_cancel_unwind - conf_thread_cancel built with -fexceptions
 * (see the Makefile), as Debian builds much of its C: pthread_cleanup_push
 * then registers nothing with glibc, and the handlers run as the unwinder
 * leaves each frame.
 */
#include "conf_thread_cancel.c"
