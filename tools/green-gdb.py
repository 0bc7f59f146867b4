# green-gdb.py - gdb commands for a process that runs greenlets: one linked
# with libgreen, or one greened by libgreen-preload.so.
#
#   (gdb) source /usr/share/greend/green-gdb.py     (or tools/green-gdb.py)
#   (gdb) green list            every greenlet of every hub, and what it waits on
#   (gdb) green bt [ID...]      backtraces of greenlets (all when no ID)
#
# A parked greenlet is not an OS thread, so gdb's own "thread apply all bt"
# never shows where it waits.  "green bt" loads the registers the context
# switch saved on the greenlet's stack into the hub's thread, prints the
# backtrace and puts the thread's own registers back.  That needs a live
# process (x86_64 switch); on a core file, or with CTX=ucontext, only
# "green list" works.

import gdb

STATES = ["ready", "running", "waiting", "sleeping", "dead"]

# Where green__ctx_switch (libgreen/arch/ctx_x86_64.S) leaves each register,
# as an offset from the saved stack pointer; the return address is at 56 and
# the caller's stack pointer is sp + 64.
SAVED = [("r15", 8), ("r14", 16), ("r13", 24), ("r12", 32), ("rbx", 40), ("rbp", 48)]


def _hubs():
    """[(thread, hub)] for every OS thread that has a hub."""
    found = []
    selected = gdb.selected_thread()
    try:
        for th in gdb.selected_inferior().threads():
            th.switch()
            try:
                hub = gdb.parse_and_eval("'hub.c'::tls_hub")
            except gdb.error:
                continue
            if int(hub) != 0:
                found.append((th, hub))
    finally:
        if selected is not None and selected.is_valid():
            selected.switch()
    return found


def _greenlets(hub):
    g = hub["all_head"]
    while int(g) != 0:
        yield g
        g = g["all_next"]


def _describe(g):
    state = int(g["state"])
    name = g["name"].string(length=32).split("\0")[0]
    text = "greenlet %d%s %s" % (int(g["id"]), " (%s)" % name if name else "",
                                 STATES[state] if 0 <= state < len(STATES) else state)
    kind = str(g["wait_kind"])
    if state in (2, 3):
        if kind == "GREEN_WAIT_FD":
            text += " on fd %d" % int(g["wait_fd"])
        else:
            text += " on %s" % kind.replace("GREEN_WAIT_", "").lower()
    if bool(g["is_main"]):
        text += " [main]"
    return text


class Green(gdb.Command):
    """Greenlets: "green list", "green bt [ID...]"."""

    def __init__(self):
        super().__init__("green", gdb.COMMAND_STACK, prefix=True)


class GreenList(gdb.Command):
    """List every greenlet of every hub and what it waits on."""

    def __init__(self):
        super().__init__("green list", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        hubs = _hubs()
        if not hubs:
            print("no hub: libgreen is not loaded, or no thread has started one")
        for th, hub in hubs:
            print("thread %d (LWP %d): hub at %s" % (th.num, th.ptid[1], hub))
            for g in _greenlets(hub):
                if int(g["state"]) != 4:
                    print("  " + _describe(g))


class GreenBt(gdb.Command):
    """Backtrace of each greenlet (or of those whose ids are given)."""

    def __init__(self):
        super().__init__("green bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        wanted = {int(x) for x in arg.split()} if arg.strip() else None
        selected = gdb.selected_thread()
        try:
            for th, hub in _hubs():
                for g in _greenlets(hub):
                    if int(g["state"]) == 4 or bool(g["is_hub"]):
                        continue
                    if wanted is not None and int(g["id"]) not in wanted:
                        continue
                    print(_describe(g))
                    th.switch()
                    if int(g["state"]) == 1:
                        gdb.execute("bt")  # running: the thread's own stack
                    else:
                        self._parked_bt(g)
                    print()
        finally:
            if selected is not None and selected.is_valid():
                selected.switch()

    @staticmethod
    def _parked_bt(g):
        try:
            sp = int(g["ctx"]["sp"])
        except gdb.error:
            print("  (not the x86_64 switch: no backtrace)")
            return
        if gdb.selected_inferior().pid == 0 or sp == 0:
            print("  (no live process or no saved context)")
            return
        ptr = gdb.lookup_type("unsigned long").pointer()
        word = lambda off: int(gdb.Value(sp + off).cast(ptr).dereference())
        names = ["rsp", "rip"] + [r for r, _ in SAVED]
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in names}
        try:
            for reg, off in SAVED:
                gdb.execute("set $%s = %d" % (reg, word(off)), to_string=True)
            gdb.execute("set $rip = %d" % word(56), to_string=True)
            gdb.execute("set $rsp = %d" % (sp + 64), to_string=True)
            gdb.execute("bt")
        finally:
            for reg in names:
                gdb.execute("set $%s = %d" % (reg, saved[reg]), to_string=True)


Green()
GreenList()
GreenBt()
