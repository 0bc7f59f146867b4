/*
 * tree.h - finding every process that belongs to a worker instance, so that
 * stopping it, or its exit, ends them all: the leader's process group is
 * not enough, since a child may call setsid() or outlive the leader.
 *
 * greend makes itself the child subreaper (PR_SET_CHILD_SUBREAPER), so
 * whatever a worker leaves behind is reparented to greend rather than to
 * init; libev's SIGCHLD handler reaps every child, so these orphans never
 * stay zombies.  An instance's processes are then found in /proc: the
 * descendants of its leader while it lives, and greend's own children that
 * no live leader owns but that carry the instance's mark (its process group
 * or session id, or GREEND_INSTANCE=ID in the environment they started
 * with), with all of their descendants.  (A cgroup per instance would need
 * a delegated cgroup v2 subtree, which greend cannot count on.)
 */
#ifndef GREEND_TREE_H
#define GREEND_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct gd_proc {
	pid_t pid, ppid, pgid, sid;
};

/* Every process in /proc (a snapshot).  Returns the count and a malloc'ed
 * array in *OUT, or -1 with errno. */
ssize_t gd_proc_scan(struct gd_proc **out);

/* Whether PID's environment at exec held exactly ENTRY ("K=V"). */
bool gd_proc_env_has(pid_t pid, const char *entry);

/*
 * Mark in MARK[] (one per process of P) every process of the instance whose
 * leader is (LEADER_ALIVE) or was LEADER, whose id is ID: see above.  IS_LEADER says
 * whether a pid is some live instance's leader (those are never taken as
 * orphans).  Returns how many were marked.  The leader itself is not.
 */
size_t gd_tree_mark(const struct gd_proc *p, size_t n, pid_t self, pid_t leader,
		    bool leader_alive, const char *id,
		    bool (*is_leader)(pid_t pid, void *arg), void *arg, bool *mark);

#endif
