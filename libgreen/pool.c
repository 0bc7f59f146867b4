/*
 * pool.c - groups and pools (gevent.pool.Group and Pool).
 *
 * Membership is a node inside the greenlet, so joining a group allocates
 * nothing; the group holds a reference to each member until it dies.  A pool
 * is a group with a limit: spawning waits on the group's wait queue, which
 * also serves green_group_join, and every death wakes it.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>

void green_group_init(green_group_t *group)
{
	green_pool_init(group, 0);
}

void green_pool_init(green_pool_t *pool, size_t size)
{
	pool->_members = NULL;
	pool->_count = 0;
	pool->_limit = size;
	pool->_waiters._head = pool->_waiters._tail = NULL;
}

void green__group_leave(green_t *g)
{
	green_group_t *group = g->member.group;
	struct green__member *m = &g->member;

	if (m->prev)
		m->prev->next = m->next;
	else
		group->_members = m->next;
	if (m->next)
		m->next->prev = m->prev;
	m->next = m->prev = NULL;
	m->group = NULL;
	group->_count--;
	green__waitq_wake_all(&group->_waiters, 0);
	green_release(g); /* the group's reference */
}

green_t *green_group_spawn(green_group_t *group, void *(*fn)(void *), void *arg,
                           const green_attr_t *attr, int64_t deadline)
{
	struct green_hub *h = green__hub();
	green_t *g;

	if (!h)
		return NULL;
	if (!group || !fn) {
		errno = EINVAL;
		return NULL;
	}
	while (group->_limit && group->_count >= group->_limit) {
		struct green__waiter w = {0};

		green__waitq_push(&group->_waiters, &w, h->current);
		if (green__park(h, GREEN_WAIT_GROUP, group, deadline, 0) < 0) {
			green__waitq_remove(&w);
			return NULL;
		}
	}
	g = green_spawn(fn, arg, attr);
	if (!g)
		return NULL;
	/* The caller's reference from green_spawn becomes the group's. */
	g->member.group = group;
	g->member.prev = NULL;
	g->member.next = group->_members;
	if (group->_members)
		group->_members->prev = &g->member;
	group->_members = &g->member;
	group->_count++;
	return g;
}

size_t green_group_count(const green_group_t *group)
{
	return group->_count;
}

size_t green_pool_free_count(const green_pool_t *pool)
{
	if (!pool->_limit)
		return SIZE_MAX;
	return pool->_count >= pool->_limit ? 0 : pool->_limit - pool->_count;
}

int green_group_join(green_group_t *group, int64_t deadline)
{
	struct green_hub *h = green__hub();

	if (!h)
		return -1;
	while (group->_count > 0) {
		struct green__waiter w = {0};

		if (h->current->member.group == group) {
			errno = EDEADLK; /* would wait for itself */
			return -1;
		}
		green__waitq_push(&group->_waiters, &w, h->current);
		if (green__park(h, GREEN_WAIT_GROUP, group, deadline, 0) < 0) {
			green__waitq_remove(&w);
			return -1;
		}
	}
	return 0;
}

int green_group_kill(green_group_t *group, int64_t deadline)
{
	struct green_hub *h = green__hub();
	struct green__member *m, *next;

	if (!h)
		return -1;
	for (m = group->_members; m; m = next) {
		green_t *g = (green_t *)((char *)m - offsetof(green_t, member));

		/* Killing an unstarted member makes it leave the group now. */
		next = m->next;
		if (g != h->current)
			green_kill(g);
	}
	if (deadline == GREEN_NOW)
		return 0;
	return green_group_join(group, deadline);
}
