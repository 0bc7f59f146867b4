/*
 * timeout.c - green_sleep and scoped timeouts (gevent.Timeout).
 *
 * A scope is a caller-owned struct on the greenlet's stack, chained to the
 * enclosing one; it stores the earliest deadline of the whole chain so that
 * green__park reads one field instead of walking scopes on every wait.
 */
#include "internal.h"

#include <errno.h>

int green_sleep(int64_t deadline)
{
	struct green_hub *h = green__hub();

	if (!h)
		return -1;
	return green__park(h, GREEN_WAIT_TIMER, NULL, deadline, 0);
}

void green_timeout_enter(green_timeout_t *t, int64_t deadline)
{
	green_t *self = green_current();
	int64_t outer;

	t->_deadline = deadline;
	t->_owner = self;
	t->_outer = self ? self->timeouts : NULL;
	outer = t->_outer ? t->_outer->_effective : GREEN_FOREVER;
	if (outer < 0)
		t->_effective = deadline;
	else if (deadline < 0)
		t->_effective = outer;
	else
		t->_effective = deadline < outer ? deadline : outer;
	if (self)
		self->timeouts = t;
}

bool green_timeout_leave(green_timeout_t *t)
{
	green_t *self = t->_owner;

	if (self) {
		green_timeout_t **link = &self->timeouts;

		/* Leaving out of order is a bug in the caller, but it must not
		 * leave a dangling scope behind: unlink wherever it is. */
		while (*link && *link != t)
			link = &(*link)->_outer;
		if (*link)
			*link = t->_outer;
	}
	t->_owner = NULL;
	return green_timeout_expired(t);
}

bool green_timeout_expired(const green_timeout_t *t)
{
	if (t->_deadline < 0)
		return false;
	return t->_deadline == 0 || green_now() >= t->_deadline;
}
