/*
 * rawsys.c - finding the modules that make the futex system call with a
 * syscall instruction of their own, out of the shim's reach.
 *
 * Why it matters.  A green thread that waits in such a futex blocks its OS
 * thread, and so every green thread of that hub; when the thread that
 * would wake it is one of them, the process hangs for good.  That is what
 * GCC's libgomp does at the first barrier of a parallel region, and what a
 * Go runtime linked with cgo does in its own scheduler.  A futex made
 * through libc's syscall() is the shim's (futex.c) and greened.
 *
 * Why a scan of the code.  A list of names would know only the modules
 * someone met; the bytes say what any module does.  On x86_64 a
 * compiler puts SYS_futex in a register as a 32-bit immediate ("mov
 * $202,%r" b8+r ca 00 00 00, with or without a REX prefix, or "mov
 * $202,%rax" c7 c0+r ca 00 00 00) and, since the inline assembly asks for
 * it in %eax, moves it there shortly before the syscall instruction (0f
 * 05); libgomp's are 18 to 141 bytes apart.  So a module is taken to issue
 * a raw futex when its executable segments hold such a load followed
 * within SCAN_WINDOW bytes by 0f 05.  A call through libc's syscall()
 * loads 202 into %edi instead (bf ca 00 00 00) and is followed by a call,
 * not a syscall instruction, so Rust's std, libstdc++'s atomic waits and
 * HotSpot are not flagged; the window is short enough that a constant 202
 * near unrelated bytes 0f 05 is rare: of the 3300 programs and libraries
 * of a Debian 12 system with OpenJDK, node, LLVM and Rust, the only ones
 * found were glibc, ld.so, libgomp, libitm, the sanitizer runtimes and Go
 * binaries, all of which do make raw futex calls.  On aarch64 the load is
 * "mov w/x<n>, #98" (movz) followed by "svc #0".  Modules whose raw futex
 * calls are expected and managed otherwise are skipped: glibc and the
 * dynamic linker (their internal calls: the man page's "what cannot be
 * greened"), the shim and libgreen, and the sanitizer runtimes (their
 * internal locks).
 *
 * When.  At start, before the thread module makes any green thread: a
 * module found then leaves the module unpatched, as thread_layout.c does.
 * A module dlopen'd later is found when it loads (tls.c's dlopen calls
 * here), but the thread module cannot be left then: the program's mutexes
 * and semaphores already hold green state (CPython's import lock is a
 * green semaphore held across that very dlopen), which glibc's functions
 * would misread.  Instead the threads such a module creates are made OS
 * threads of their own, as natively, so that its futex waits block no
 * green thread but the one that called into it, and only while it waits.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCAN_WINDOW 256
/* Modules found after start, whose pthread_create calls stay glibc's. */
#define NATIVE_MAX 16

struct code_range {
	uintptr_t lo, hi;
};

static struct code_range native_code[NATIVE_MAX];
static unsigned int nnative; /* published with release: read without a lock */

/* The modules looked at already (by load address and program headers,
 * which differ for two modules loaded one after the other at one address
 * only if they are the same file): a dlopen scans only what is new. */
static struct {
	uintptr_t base;
	const void *phdr;
} *scanned;
static size_t nscanned, scanned_cap;
static int scan_lock; /* dlopen on two OS threads at once */

bool shim_module_among(const char *path, uintptr_t base, const char *const *prefixes,
                       size_t n)
{
	const char *file = path ? strrchr(path, '/') : NULL;
	Dl_info self;

	if (dladdr((void *)shim_module_among, &self) && (uintptr_t)self.dli_fbase == base)
		return true;
	if (!path)
		return false;
	file = file ? file + 1 : path;
	for (size_t i = 0; i < n; i++)
		if (strncmp(file, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static bool module_skipped(const struct dl_phdr_info *info)
{
	static const char *const kept[] = {"libc.so",    "ld-linux",   "ld64.so",
	                                   "libgreen",   "libasan.so", "libubsan.so",
	                                   "liblsan.so", "libtsan.so", "libclang_rt."};

	return shim_module_among(info->dlpi_name, info->dlpi_addr, kept,
	                         sizeof(kept) / sizeof(kept[0]));
}

#if defined(__x86_64__)
/* The four bytes at q are the immediate of a load of 202 into a register:
 * the opcode (and ModRM byte) before them say so. */
static bool loads_futex_number(const unsigned char *start, const unsigned char *q)
{
	size_t before = (size_t)(q - start);

	if (before >= 1 && q[-1] >= 0xb8 && q[-1] <= 0xbf)
		return true; /* mov $imm32, %r32 */
	return before >= 2 && q[-2] == 0xc7 && q[-1] >= 0xc0 && q[-1] <= 0xc7;
}

static bool code_issues_futex(const unsigned char *code, size_t len)
{
	static const unsigned char insn[2] = {0x0f, 0x05};
	const unsigned char *end = code + len, *q = code;

	/* memchr for the rare byte first: memmem of ca 00 00 00 is several
	 * times slower on code, which is full of zero bytes. */
	while (end - q >= 4 && (q = memchr(q, 0xca, (size_t)(end - q - 3))) != NULL) {
		const unsigned char *after = q + 4;
		size_t window = (size_t)(end - after);

		if (window > SCAN_WINDOW)
			window = SCAN_WINDOW;
		if (!q[1] && !q[2] && !q[3] && loads_futex_number(code, q) &&
		    memmem(after, window, insn, sizeof(insn)))
			return true;
		q++;
	}
	return false;
}
#elif defined(__aarch64__)
static bool code_issues_futex(const unsigned char *code, size_t len)
{
	const uint32_t *w = (const void *)code;
	size_t n = len / 4, window = SCAN_WINDOW / 4;

	for (size_t i = 0; i < n; i++) {
		uint32_t rd_clear = w[i] & ~(uint32_t)0x1f;

		/* movz w<n>/x<n>, #98 (SYS_futex), shift 0 */
		if (rd_clear != 0x52800c40 && rd_clear != 0xd2800c40)
			continue;
		for (size_t j = i + 1; j < n && j <= i + window; j++)
			if (w[j] == 0xd4000001) /* svc #0 */
				return true;
	}
	return false;
}
#else
static bool code_issues_futex(const unsigned char *code, size_t len)
{
	(void)code;
	(void)len;
	return false; /* no scan for this architecture */
}
#endif

static bool seen_before(const struct dl_phdr_info *info)
{
	for (size_t i = 0; i < nscanned; i++)
		if (scanned[i].base == info->dlpi_addr && scanned[i].phdr == info->dlpi_phdr)
			return true;
	if (nscanned == scanned_cap) {
		size_t cap = scanned_cap ? scanned_cap * 2 : 64;
		void *p = realloc(scanned, cap * sizeof(*scanned));

		if (!p)
			return false; /* scanned again next time: only slower */
		scanned = p;
		scanned_cap = cap;
	}
	scanned[nscanned].base = info->dlpi_addr;
	scanned[nscanned].phdr = info->dlpi_phdr;
	nscanned++;
	return false;
}

struct found {
	char name[160];
	unsigned int count;
	bool at_start;
};

static const char *display_name(const struct dl_phdr_info *info)
{
	return info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "the program";
}

static void remember_native(const struct dl_phdr_info *info)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	for (unsigned int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	if (nnative == NATIVE_MAX || lo >= hi)
		return;
	native_code[nnative] = (struct code_range){lo, hi};
	__atomic_store_n(&nnative, nnative + 1, __ATOMIC_RELEASE);
}

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct found *f = arg;
	bool hit = false;

	(void)size;
	if (seen_before(info) || module_skipped(info))
		return 0;
	for (unsigned int i = 0; i < info->dlpi_phnum && !hit; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		/* Execute-only code cannot be read: nothing to say about it. */
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && (ph->p_flags & PF_R)) {
			hit = code_issues_futex((const void *)(info->dlpi_addr + ph->p_vaddr),
			                        ph->p_filesz);
		}
	}
	if (!hit)
		return 0;
	if (!f->count++)
		snprintf(f->name, sizeof(f->name), "%s", display_name(info));
	if (!f->at_start) {
		remember_native(info);
		shim_log("thread: %s (loaded after start) makes futex system calls "
		         "of its own: the threads it creates run as OS threads, and "
		         "a green thread waiting in it holds up its OS thread's others",
		         display_name(info));
	}
	return 0;
}

static int64_t cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void scan_new(struct found *f)
{
	int64_t t0 = green_now(), cpu0 = cpu_ns();
	size_t before;

	green__spin_lock(&scan_lock);
	before = nscanned;
	dl_iterate_phdr(scan_module, f);
	SHIM_DEBUG("thread: scanned %zu modules for futex system calls of their own in %lld us "
	           "(%lld us of CPU)", nscanned - before, (long long)((green_now() - t0) / 1000),
	           (long long)((cpu_ns() - cpu0) / 1000));
	green__spin_unlock(&scan_lock);
}

void shim_rawsys_check_start(void)
{
	struct found f = {.at_start = true};

	if (!shim_patched[SHIM_THREAD])
		return;
	scan_new(&f);
	if (!f.count)
		return;
	shim_patched[SHIM_THREAD] = false;
	shim_log("thread module left unpatched: %s%s makes futex system calls of its own "
	         "(a syscall instruction, not libc's), which would block every green thread "
	         "of its OS thread", f.name, f.count > 1 ? " and others" : "");
	shim_report_warning("thread: left unpatched: %s%s makes futex system calls of its "
	                    "own (a syscall instruction, not libc's)",
	                    f.name, f.count > 1 ? " and others" : "");
}

void shim_rawsys_modules_changed(void)
{
	struct found f = {.at_start = false};

	if (shim_patched[SHIM_THREAD])
		scan_new(&f);
}

bool shim_rawsys_native_caller(const void *addr)
{
	unsigned int n = __atomic_load_n(&nnative, __ATOMIC_ACQUIRE);

	for (unsigned int i = 0; i < n; i++)
		if ((uintptr_t)addr >= native_code[i].lo && (uintptr_t)addr < native_code[i].hi)
			return true;
	return false;
}
