/*
 * tls.c - compiler thread-local storage (__thread, C11 and C++ thread_local,
 * Rust's thread_local!) per green thread, and the thread_local destructors
 * a green thread registers.
 *
 * Why copying.  The address of a TLS variable is fixed per OS thread (the
 * FS base plus an offset for static TLS, the DTV for dynamic TLS) and code
 * keeps it in registers across calls, so a green thread cannot be given
 * other addresses; it is given its own contents instead.  Each OS thread's
 * block of every module with TLS holds the data of one green thread, its
 * resident; switching to another green thread copies the blocks out into
 * the resident's save area and the newcomer's in (or, the first time, the
 * module's image: .tdata copied, .tbss zeroed, as for a new kernel thread).
 * The other design, a thread control block per green thread with the FS
 * base switched, would make glibc's own struct pthread, DTV and static TLS
 * layout ours to build: private, unchecked, and every libc call on a green
 * thread would then see a thread glibc never made.  bench/bench_tls.c
 * measures both: the FS base write alone, and the copies.
 *
 * Whose blocks are swapped.  Every module that has a PT_TLS segment, except
 * glibc's (errno, which libgreen saves per greenlet, malloc's caches and the
 * resolver's state are fine per OS thread: green threads of one OS thread
 * never run at once), the shim's own (its state is per OS thread by design)
 * and the sanitizer runtimes' (ASan's record of the OS thread).  The hub and
 * greenlets the program did not create as threads never change the
 * resident: a switch through the hub and back costs nothing, and a program
 * without TLS of its own never installs the switch hook at all.
 *
 * Modules come and go with dlopen/dlclose, which are interposed to look
 * again; each slot of the module table carries a generation, so a save area
 * for a module since unloaded (or a slot reused) is recognised and dropped.
 * A module's block on an OS thread is found with __tls_get_addr (the ABI's,
 * not glibc's layout), which also allocates a dynamic block not made yet;
 * at start, that answer is checked against dl_iterate_phdr's for the blocks
 * the main thread has.
 *
 * Where it cannot: when the TLS check fails, or more modules have TLS at
 * start than the table has slots, the thread module is left unpatched
 * (and the shim says why): green threads sharing those modules' data is
 * what crashed Rust's std, Ruby's VM and HotSpot before this file.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include "thread_int.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TLS_SLOTS_MAX 64

/* What the x86_64 and aarch64 ABIs pass __tls_get_addr. */
struct tls_index {
	unsigned long module, offset;
};
extern void *__tls_get_addr(struct tls_index *ti);

struct tls_module {
	size_t modid;       /* 0: the slot is free */
	uint64_t gen;       /* bumped each time the slot is taken */
	const void *image;  /* .tdata, then .tbss (zero) up to memsz */
	size_t filesz, memsz;
	uintptr_t base;     /* the module's load address: who it is */
	bool seen;          /* still there at this scan */
};

static struct tls_module modules[TLS_SLOTS_MAX];
static unsigned int nslots;     /* slots below this may be taken */
static uint64_t slot_gen;
static int modules_lock;        /* between rescans (green__spin_lock) */
/* Odd while a rescan changes the table: switches read it without a lock
 * (a seqlock), since a lock in the switch path would cost every switch. */
static unsigned int table_seq;
static unsigned long long seen_adds, seen_subs;
static bool tls_active;         /* per-green-thread TLS is on */
static bool tls_overflow_said;
static uintptr_t main_base;     /* the program's load address */

struct tls_copy {
	uint64_t gen; /* modules[slot].gen when saved; 0 = none */
	size_t size;
	void *data;
};

/* A green thread's TLS while another is resident, and its destructors. */
struct shim_tls {
	struct tls_copy *copies; /* by slot */
	unsigned int ncopies;
	struct tls_dtor *dtors;  /* newest first */
};

struct tls_dtor {
	void (*fn)(void *);
	void *obj;
	void *dso_handle; /* a reference on the module, so it stays loaded */
	struct tls_dtor *next;
};

/* Per OS thread (the shim's own TLS is not swapped). */
struct tls_hub {
	struct shim_tls *resident; /* NULL: nobody's (its owner ended) */
	struct shim_tls main;      /* the main greenlet's */
	void *addr[TLS_SLOTS_MAX];
	uint64_t addr_gen[TLS_SLOTS_MAX];
};
static __thread struct tls_hub *tls_hub;

/* ---- the module table ---------------------------------------------------- */

/* glibc's, the shim's and the sanitizers' TLS stays per OS thread. */
static bool module_skipped(const struct dl_phdr_info *info)
{
	static const char *const kept[] = {"libc.so", "libasan.so", "libubsan.so",
	                                   "liblsan.so", "libtsan.so"};

	return shim_module_among(info->dlpi_name, info->dlpi_addr, kept,
	                         sizeof(kept) / sizeof(kept[0]));
}

struct scan {
	bool at_start;
	const char *refuse; /* at start: why the module cannot be managed */
	char refuse_name[128];
};

static void table_write_begin(void)
{
	__atomic_store_n(&table_seq, table_seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void table_write_end(void)
{
	__atomic_store_n(&table_seq, table_seq + 1, __ATOMIC_RELEASE);
}

/*
 * Slot s as it is between rescans.  A rescan runs on another OS thread
 * (this one's never switches inside one), so waiting out an odd count
 * ends.
 */
static void table_read(unsigned int s, struct tls_module *out)
{
	unsigned int seq;

	do {
		while ((seq = __atomic_load_n(&table_seq, __ATOMIC_ACQUIRE)) & 1)
			;
		*out = modules[s];
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while (seq != __atomic_load_n(&table_seq, __ATOMIC_RELAXED));
}

static const ElfW(Phdr) *tls_phdr(const struct dl_phdr_info *info)
{
	for (unsigned int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_TLS)
			return &info->dlpi_phdr[i];
	return NULL;
}

static void take_slot(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
                      struct scan *sc)
{
	unsigned int free_slot = TLS_SLOTS_MAX;

	for (unsigned int s = 0; s < nslots; s++) {
		struct tls_module *m = &modules[s];

		if (m->modid == info->dlpi_tls_modid && m->base == info->dlpi_addr &&
		    m->memsz == ph->p_memsz) {
			m->seen = true;
			return;
		}
		if (!m->modid && free_slot == TLS_SLOTS_MAX)
			free_slot = s;
	}
	if (free_slot == TLS_SLOTS_MAX && nslots < TLS_SLOTS_MAX)
		free_slot = nslots++;
	if (free_slot == TLS_SLOTS_MAX) {
		if (sc->at_start && !sc->refuse) {
			sc->refuse = "more modules with thread-local data than the shim keeps";
			snprintf(sc->refuse_name, sizeof(sc->refuse_name), "%s", info->dlpi_name);
		} else if (!tls_overflow_said) {
			tls_overflow_said = true;
			shim_log("thread: %s: more modules with thread-local data than the "
			         "shim keeps: its thread-local data is shared by the green "
			         "threads of an OS thread", info->dlpi_name);
		}
		return;
	}
	modules[free_slot] = (struct tls_module){
	    .modid = info->dlpi_tls_modid,
	    .gen = ++slot_gen,
	    .image = (const void *)(info->dlpi_addr + ph->p_vaddr),
	    .filesz = ph->p_filesz,
	    .memsz = ph->p_memsz,
	    .base = info->dlpi_addr,
	    .seen = true,
	};
	SHIM_DEBUG("thread: per-green-thread TLS for %s (module %zu, %zu bytes)",
	           info->dlpi_name[0] ? info->dlpi_name : "the program",
	           (size_t)info->dlpi_tls_modid, (size_t)ph->p_memsz);
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	const ElfW(Phdr) *ph;

	(void)size;
	seen_adds = info->dlpi_adds;
	seen_subs = info->dlpi_subs;
	if (!info->dlpi_name[0] && !main_base)
		main_base = info->dlpi_addr; /* the first entry: the program */
	if (!info->dlpi_tls_modid || !(ph = tls_phdr(info)) || !ph->p_memsz ||
	    module_skipped(info))
		return 0;
	/* The check at start: __tls_get_addr names the block dl_iterate_phdr
	 * does, for every block the main thread has already. */
	if (sc->at_start && info->dlpi_tls_data && !sc->refuse) {
		struct tls_index ti = {info->dlpi_tls_modid, 0};

		if (__tls_get_addr(&ti) != info->dlpi_tls_data) {
			sc->refuse = "__tls_get_addr and dl_iterate_phdr disagree on where "
			             "its thread-local block is";
			snprintf(sc->refuse_name, sizeof(sc->refuse_name), "%s", info->dlpi_name);
		}
	}
	table_write_begin();
	take_slot(info, ph, sc);
	table_write_end();
	return 0;
}

/* Look at the loaded modules again (at start: sc->refuse says why
 * they cannot be managed).  One rescan at a time. */
static void rescan(struct scan *sc)
{
	green__spin_lock(&modules_lock);
	for (unsigned int s = 0; s < nslots; s++)
		modules[s].seen = false;
	dl_iterate_phdr(scan_one, sc);
	table_write_begin();
	for (unsigned int s = 0; s < nslots; s++)
		if (modules[s].modid && !modules[s].seen)
			modules[s].modid = 0; /* unloaded: its save areas are stale */
	while (nslots && !modules[nslots - 1].modid)
		nslots--;
	table_write_end();
	green__spin_unlock(&modules_lock);
}

/* ---- the swap ------------------------------------------------------------- */

static void tls_switched_in(struct green_hub *h, green_t *g);
static struct tls_copy *copy_slot(struct shim_tls *o, unsigned int s);
static int reserve(struct shim_tls *o);
static void tls_free(struct shim_tls *o);

static struct tls_hub *hub_state(void)
{
	struct tls_hub *th = tls_hub;

	if (!th) {
		th = calloc(1, sizeof(*th));
		if (!th)
			return NULL;
		if (reserve(&th->main) < 0) {
			tls_free(&th->main);
			free(th);
			return NULL;
		}
		th->resident = &th->main;
		tls_hub = th;
	}
	return th;
}

/* This OS thread's block of module m, in slot s. */
static void *block_of(struct tls_hub *th, unsigned int s, const struct tls_module *m)
{
	if (th->addr_gen[s] != m->gen) {
		struct tls_index ti = {m->modid, 0};

		th->addr[s] = __tls_get_addr(&ti);
		th->addr_gen[s] = m->gen;
	}
	return th->addr[s];
}

static struct tls_copy *copy_slot(struct shim_tls *o, unsigned int s)
{
	if (s >= o->ncopies) {
		struct tls_copy *c = realloc(o->copies, TLS_SLOTS_MAX * sizeof(*c));

		if (!c)
			return NULL;
		memset(c + o->ncopies, 0, (TLS_SLOTS_MAX - o->ncopies) * sizeof(*c));
		o->copies = c;
		o->ncopies = TLS_SLOTS_MAX;
	}
	return &o->copies[s];
}

/* o's save area of slot s, at least size bytes; NULL without memory. */
static struct tls_copy *room_for(struct shim_tls *o, unsigned int s, size_t size)
{
	struct tls_copy *c = copy_slot(o, s);

	if (c && c->size < size) {
		void *d = realloc(c->data, size);

		if (!d)
			return NULL;
		c->data = d;
		c->size = size;
	}
	return c;
}

/* Save areas for every module there is now, so that a switch allocates
 * only for modules loaded later; -1 without memory. */
static int reserve(struct shim_tls *o)
{
	unsigned int n = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);

	if (!copy_slot(o, 0))
		return -1;
	for (unsigned int s = 0; s < n; s++) {
		struct tls_module m;

		table_read(s, &m);
		if (m.modid && !room_for(o, s, m.memsz))
			return -1;
	}
	return 0;
}

/* Save the resident's block of slot s, whose module is m. */
static bool save_block(struct shim_tls *o, const struct tls_module *m, unsigned int s,
                       const void *blk)
{
	struct tls_copy *c = room_for(o, s, m->memsz);

	if (!c)
		return false;
	memcpy(c->data, blk, m->memsz);
	c->gen = m->gen;
	return true;
}

static void load_block(struct shim_tls *o, const struct tls_module *m, unsigned int s,
                       void *blk)
{
	const struct tls_copy *c = s < o->ncopies ? &o->copies[s] : NULL;

	if (c && c->gen == m->gen) {
		memcpy(blk, c->data, m->memsz);
	} else {
		memcpy(blk, m->image, m->filesz);
		memset((char *)blk + m->filesz, 0, m->memsz - m->filesz);
	}
}

/* Only for a module loaded after the save areas were made. */
static void __attribute__((noreturn)) swap_failed(void)
{
	static const char msg[] =
	    "libgreen-preload: FATAL: no memory to keep a green thread's thread-local data\n";

	syscall(SYS_write, 2, msg, sizeof(msg) - 1);
	abort();
}

static void swap_to(struct tls_hub *th, struct shim_tls *to)
{
	struct shim_tls *from = th->resident;
	unsigned int n = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);
	int saved = errno;

	for (unsigned int s = 0; s < n; s++) {
		struct tls_module m;
		void *blk;

		table_read(s, &m);
		if (!m.modid || !(blk = block_of(th, s, &m)))
			continue;
		if (from && !save_block(from, &m, s, blk))
			swap_failed();
		load_block(to, &m, s, blk);
	}
	th->resident = to;
	errno = saved;
}

/* libgreen's hook: g runs now, on its own stack. */
static void tls_switched_in(struct green_hub *h, green_t *g)
{
	struct tls_hub *th = tls_hub;
	struct shim_tls *to;

	(void)h;
	if (g->is_hub)
		return;
	if (g->is_main) {
		if (!th)
			return; /* nobody else ever ran here: still main's */
		to = &th->main;
	} else {
		struct gthread *t = g->local;

		if (!t || !t->tls)
			return;
		to = t->tls;
		if (!th && !(th = hub_state()))
			swap_failed();
	}
	if (to != th->resident)
		swap_to(th, to);
}

/* ---- green threads ------------------------------------------------------- */

int shim_tls_thread_init(struct gthread *t)
{
	if (!tls_active)
		return 0;
	if (!hub_state())
		return -1;
	t->tls = calloc(1, sizeof(*t->tls));
	if (!t->tls)
		return -1;
	if (reserve(t->tls) < 0) {
		shim_tls_thread_exit(t);
		return -1;
	}
	return 0;
}

static void tls_free(struct shim_tls *o)
{
	for (unsigned int s = 0; s < o->ncopies; s++)
		free(o->copies[s].data);
	free(o->copies);
	o->copies = NULL;
	o->ncopies = 0;
}

void shim_tls_thread_exit(struct gthread *t)
{
	struct tls_hub *th = tls_hub;

	if (!t->tls)
		return;
	if (th && th->resident == t->tls)
		th->resident = NULL; /* what the blocks hold is nobody's now */
	tls_free(t->tls);
	free(t->tls);
	t->tls = NULL;
}

/* glibc's __call_tls_dtors: newest first, and one registered meanwhile
 * runs too. */
void shim_tls_run_dtors(struct gthread *t)
{
	struct shim_tls *o = t->tls;
	struct tls_dtor *d;

	if (!o)
		return;
	while ((d = o->dtors) != NULL) {
		o->dtors = d->next;
		d->fn(d->obj);
		if (d->dso_handle)
			dlclose(d->dso_handle);
		free(d);
	}
}

/*
 * What libstdc++'s __cxa_thread_atexit and Rust's std call to have a
 * thread_local's destructor run at thread exit.  A green thread keeps its
 * own list; the main thread's, and any thread that is not green, are
 * glibc's.
 */
int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso_symbol);
int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso_symbol)
{
	green_t *g = green_self();
	struct gthread *t;
	struct tls_dtor *d;
	Dl_info info;

	if (!g || g->is_main || !(t = g->local) || !t->tls || t->exited)
		return SHIM_REAL(__cxa_thread_atexit_impl)(fn, obj, dso_symbol);
	d = malloc(sizeof(*d));
	if (!d)
		return -1;
	d->fn = fn;
	d->obj = obj;
	d->dso_handle = NULL;
	/* As glibc does, keep the module loaded while a destructor of it is
	 * pending (the program's own needs no reference). */
	if (dso_symbol && dladdr(dso_symbol, &info) && info.dli_fname && info.dli_fname[0] &&
	    (uintptr_t)info.dli_fbase != main_base)
		d->dso_handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	d->next = t->tls->dtors;
	t->tls->dtors = d;
	return 0;
}

/*
 * exit() from a green thread.  glibc runs the thread_local destructors of
 * the OS thread it is called on, which are the main thread's registrations,
 * on whatever data is in place: the calling thread's.  So the caller's own
 * destructors run first, on its data, as natively, and the main thread's
 * data is put back for glibc's.
 */
void exit(int status)
{
	green_t *g = green_self();
	struct tls_hub *th = tls_hub;

	if (g && !g->is_main) {
		struct gthread *t = g->local;

		if (t && t->tls)
			shim_tls_run_dtors(t);
		if (th && green__hooks.switched_in && th->resident != &th->main)
			swap_to(th, &th->main);
	}
	SHIM_REAL(exit)(status);
	__builtin_unreachable();
}

/* ---- start, dlopen, dlclose ---------------------------------------------- */

static struct shim_tls *owner_of(green_t *g, struct tls_hub *th)
{
	struct gthread *t;

	if (g->is_hub)
		return NULL;
	if (g->is_main)
		return &th->main;
	t = g->local;
	return t ? t->tls : NULL;
}

/* The first module with TLS of the process: from now on switches swap.
 * What this OS thread's blocks hold is the running green thread's. */
static void hook_install(void)
{
	struct green_hub *h = green__hub_peek();
	struct tls_hub *th;

	if (!nslots || green__hooks.switched_in)
		return;
	if (h && (th = hub_state()) != NULL) {
		struct shim_tls *o = owner_of(h->current, th);

		if (o)
			th->resident = o;
	}
	__atomic_store_n(&green__hooks.switched_in, tls_switched_in, __ATOMIC_RELEASE);
}

static int first_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;

	(void)size;
	c[0] = info->dlpi_adds;
	c[1] = info->dlpi_subs;
	return 1;
}

void shim_tls_modules_changed(void)
{
	unsigned long long c[2] = {0, 0};
	struct scan sc = {.at_start = false};

	if (!tls_active)
		return;
	dl_iterate_phdr(first_counts, c);
	if (c[0] == __atomic_load_n(&seen_adds, __ATOMIC_RELAXED) &&
	    c[1] == __atomic_load_n(&seen_subs, __ATOMIC_RELAXED))
		return;
	rescan(&sc);
	hook_install();
}

void shim_tls_init(void)
{
	struct scan sc = {.at_start = true};

	if (!shim_patched[SHIM_THREAD])
		return;
	rescan(&sc);
	if (sc.refuse) {
		shim_patched[SHIM_THREAD] = false;
		shim_log("thread module left unpatched: %s: %s", sc.refuse_name, sc.refuse);
		shim_report_warning("thread: left unpatched: %s: %s", sc.refuse_name, sc.refuse);
		return;
	}
	tls_active = true;
	hook_install();
}

void *dlopen(const char *file, int mode)
{
	void *handle = SHIM_REAL(dlopen)(file, mode);

	if (handle && !(mode & RTLD_NOLOAD)) {
		shim_rawsys_modules_changed();
		shim_tls_modules_changed();
	}
	return handle;
}

int dlclose(void *handle)
{
	int rc = SHIM_REAL(dlclose)(handle);

	shim_tls_modules_changed();
	return rc;
}
