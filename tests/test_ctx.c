/*
 * test_ctx.c - the raw context switch (libgreen/arch/ctx.h) without a hub:
 * ping-pong between contexts, a chain through several, stack alignment, and
 * that a switch keeps every callee-saved register and the floating-point
 * control state (MXCSR and x87 control word, or FPCR) of each side its own.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fenv.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "arch/ctx.h"
#include "green.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define TEST_ASAN 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TEST_VALGRIND 1
#endif
#endif

#define STACK_BYTES ((size_t)64 * 1024)

/* ---- stacks ---------------------------------------------------------------- */

/* The stacks are told to valgrind, as libgreen's are, so that it follows
 * the switches instead of taking them for huge frames. */
struct test_stack {
	void *lo;
	size_t size;
	unsigned int vg_id;
};

#define MAX_STACKS 8
static struct test_stack stacks[MAX_STACKS];

static void *stack_new(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	int i;

	assert_true(p != MAP_FAILED);
	for (i = 0; i < MAX_STACKS && stacks[i].lo; i++)
		;
	assert_true(i < MAX_STACKS);
	stacks[i].lo = p;
	stacks[i].size = size;
#ifdef TEST_VALGRIND
	stacks[i].vg_id = VALGRIND_STACK_REGISTER(p, (char *)p + size);
#endif
	return p;
}

static void stack_delete(void *p, size_t size)
{
	for (int i = 0; i < MAX_STACKS; i++) {
		if (stacks[i].lo != p)
			continue;
#ifdef TEST_VALGRIND
		VALGRIND_STACK_DEREGISTER(stacks[i].vg_id);
#endif
		stacks[i].lo = NULL;
	}
#ifdef TEST_ASAN
	/* Frames abandoned on this stack left redzones in the shadow; clear
	 * them so a later mapping at the same address starts clean. */
	__asan_unpoison_memory_region(p, size);
#endif
	munmap(p, size);
}

/* ---- ping-pong --------------------------------------------------------------- */

static struct green__ctx main_ctx, a_ctx, b_ctx, c_ctx;
static int ping_count;
static void *ping_arg;

static void ping_entry(void *arg)
{
	ping_arg = arg;
	for (;;) {
		ping_count++;
		green__ctx_switch(&a_ctx, &main_ctx);
	}
}

static void test_ping_pong(void **state)
{
	void *stack = stack_new(STACK_BYTES);
	int marker;

	ping_count = 0;
	ping_arg = NULL;
	green__ctx_init(&a_ctx, stack, STACK_BYTES, ping_entry, &marker);
	assert_int_equal(ping_count, 0); /* init does not run anything */
	for (int i = 1; i <= 10000; i++) {
		green__ctx_switch(&main_ctx, &a_ctx);
		assert_int_equal(ping_count, i);
	}
	assert_ptr_equal(ping_arg, &marker);
	stack_delete(stack, STACK_BYTES);
	assert_none_alive();
}

/* ---- a chain: main -> a -> b -> c -> main ------------------------------------ */

static char chain_log[64];
static size_t chain_len;

static void chain_note(char c)
{
	if (chain_len < sizeof(chain_log) - 1)
		chain_log[chain_len++] = c;
}

static void chain_entry(void *arg)
{
	char name = *(const char *)arg;
	struct green__ctx *self = name == 'a' ? &a_ctx : name == 'b' ? &b_ctx : &c_ctx;
	struct green__ctx *next = name == 'a' ? &b_ctx : name == 'b' ? &c_ctx : &main_ctx;

	for (;;) {
		chain_note(name);
		green__ctx_switch(self, next);
	}
}

static void test_chain(void **state)
{
	static char names[] = "abc";
	void *sa = stack_new(STACK_BYTES), *sb = stack_new(STACK_BYTES),
	     *sc = stack_new(STACK_BYTES);

	chain_len = 0;
	memset(chain_log, 0, sizeof(chain_log));
	green__ctx_init(&a_ctx, sa, STACK_BYTES, chain_entry, &names[0]);
	green__ctx_init(&b_ctx, sb, STACK_BYTES, chain_entry, &names[1]);
	green__ctx_init(&c_ctx, sc, STACK_BYTES, chain_entry, &names[2]);
	for (int i = 0; i < 3; i++) {
		green__ctx_switch(&main_ctx, &a_ctx);
		chain_note('m');
	}
	assert_string_equal(chain_log, "abcmabcmabcm");
	stack_delete(sa, STACK_BYTES);
	stack_delete(sb, STACK_BYTES);
	stack_delete(sc, STACK_BYTES);
	assert_none_alive();
}

/* ---- the new context's stack ------------------------------------------------- */

static uintptr_t probe_local, probe_aligned;

static void probe_entry(void *arg)
{
	/* The compiler assumes the ABI's 16-byte alignment at entry and lays
	 * this out from the stack pointer without realigning. */
	_Alignas(16) volatile char buf[16];
	volatile int local = 1;

	buf[0] = 0;
	probe_local = (uintptr_t)&local;
	probe_aligned = (uintptr_t)buf;
	green__ctx_switch(&a_ctx, &main_ctx);
	for (;;)
		green__ctx_switch(&a_ctx, &main_ctx);
}

static void test_stack_bounds_and_alignment(void **state)
{
	/* An odd, unaligned window inside a bigger mapping. */
	char *map = stack_new(STACK_BYTES);
	char *lo = map + 24;
	size_t size = STACK_BYTES - 24 - 40;

	green__ctx_init(&a_ctx, lo, size, probe_entry, NULL);
	green__ctx_switch(&main_ctx, &a_ctx);
	assert_true(probe_local >= (uintptr_t)lo);
	assert_true(probe_local < (uintptr_t)lo + size);
	assert_int_equal(probe_aligned % 16, 0);
	stack_delete(map, STACK_BYTES);
	assert_none_alive();
}

/* ---- callee-saved registers ---------------------------------------------------- */

/*
 * test_regs_switch(from, to, out, seed) loads every callee-saved register
 * with seed+1, seed+2, ..., switches, and stores what the registers hold
 * when it is resumed into out[].  Two contexts that both use it with
 * different seeds clobber each other's registers unless the switch saves
 * and restores them.
 */
void test_regs_switch(struct green__ctx *from, struct green__ctx *to,
                      uint64_t *out, uint64_t seed);

#if defined(__x86_64__)
#define NREGS 6 /* rbx rbp r12 r13 r14 r15 */
__asm__(".text\n"
        ".globl test_regs_switch\n"
        ".hidden test_regs_switch\n"
        ".type test_regs_switch, @function\n"
        ".p2align 4\n"
        "test_regs_switch:\n"
        "	pushq %rbp\n"
        "	pushq %rbx\n"
        "	pushq %r12\n"
        "	pushq %r13\n"
        "	pushq %r14\n"
        "	pushq %r15\n"
        "	pushq %rdx\n" /* out; rsp is now 16-byte aligned */
        "	leaq 1(%rcx), %rbx\n"
        "	leaq 2(%rcx), %rbp\n"
        "	leaq 3(%rcx), %r12\n"
        "	leaq 4(%rcx), %r13\n"
        "	leaq 5(%rcx), %r14\n"
        "	leaq 6(%rcx), %r15\n"
        "	call green__ctx_switch\n"
        "	popq %rdx\n"
        "	movq %rbx, 0(%rdx)\n"
        "	movq %rbp, 8(%rdx)\n"
        "	movq %r12, 16(%rdx)\n"
        "	movq %r13, 24(%rdx)\n"
        "	movq %r14, 32(%rdx)\n"
        "	movq %r15, 40(%rdx)\n"
        "	popq %r15\n"
        "	popq %r14\n"
        "	popq %r13\n"
        "	popq %r12\n"
        "	popq %rbx\n"
        "	popq %rbp\n"
        "	ret\n"
        ".size test_regs_switch, .-test_regs_switch\n");
#elif defined(__aarch64__)
#define NREGS 19 /* x19-x28, x29, d8-d15 */
__asm__(".text\n"
        ".globl test_regs_switch\n"
        ".hidden test_regs_switch\n"
        ".type test_regs_switch, %function\n"
        ".p2align 4\n"
        "test_regs_switch:\n"
        "	stp x29, x30, [sp, #-176]!\n"
        "	stp x19, x20, [sp, #16]\n"
        "	stp x21, x22, [sp, #32]\n"
        "	stp x23, x24, [sp, #48]\n"
        "	stp x25, x26, [sp, #64]\n"
        "	stp x27, x28, [sp, #80]\n"
        "	stp d8, d9, [sp, #96]\n"
        "	stp d10, d11, [sp, #112]\n"
        "	stp d12, d13, [sp, #128]\n"
        "	stp d14, d15, [sp, #144]\n"
        "	str x2, [sp, #160]\n"
        "	add x19, x3, #1\n"
        "	add x20, x3, #2\n"
        "	add x21, x3, #3\n"
        "	add x22, x3, #4\n"
        "	add x23, x3, #5\n"
        "	add x24, x3, #6\n"
        "	add x25, x3, #7\n"
        "	add x26, x3, #8\n"
        "	add x27, x3, #9\n"
        "	add x28, x3, #10\n"
        "	add x29, x3, #11\n"
        "	add x9, x3, #12\n"
        "	fmov d8, x9\n"
        "	add x9, x3, #13\n"
        "	fmov d9, x9\n"
        "	add x9, x3, #14\n"
        "	fmov d10, x9\n"
        "	add x9, x3, #15\n"
        "	fmov d11, x9\n"
        "	add x9, x3, #16\n"
        "	fmov d12, x9\n"
        "	add x9, x3, #17\n"
        "	fmov d13, x9\n"
        "	add x9, x3, #18\n"
        "	fmov d14, x9\n"
        "	add x9, x3, #19\n"
        "	fmov d15, x9\n"
        "	bl green__ctx_switch\n"
        "	ldr x2, [sp, #160]\n"
        "	stp x19, x20, [x2, #0]\n"
        "	stp x21, x22, [x2, #16]\n"
        "	stp x23, x24, [x2, #32]\n"
        "	stp x25, x26, [x2, #48]\n"
        "	stp x27, x28, [x2, #64]\n"
        "	str x29, [x2, #80]\n"
        "	fmov x9, d8\n"
        "	str x9, [x2, #88]\n"
        "	fmov x9, d9\n"
        "	str x9, [x2, #96]\n"
        "	fmov x9, d10\n"
        "	str x9, [x2, #104]\n"
        "	fmov x9, d11\n"
        "	str x9, [x2, #112]\n"
        "	fmov x9, d12\n"
        "	str x9, [x2, #120]\n"
        "	fmov x9, d13\n"
        "	str x9, [x2, #128]\n"
        "	fmov x9, d14\n"
        "	str x9, [x2, #136]\n"
        "	fmov x9, d15\n"
        "	str x9, [x2, #144]\n"
        "	ldp x19, x20, [sp, #16]\n"
        "	ldp x21, x22, [sp, #32]\n"
        "	ldp x23, x24, [sp, #48]\n"
        "	ldp x25, x26, [sp, #64]\n"
        "	ldp x27, x28, [sp, #80]\n"
        "	ldp d8, d9, [sp, #96]\n"
        "	ldp d10, d11, [sp, #112]\n"
        "	ldp d12, d13, [sp, #128]\n"
        "	ldp d14, d15, [sp, #144]\n"
        "	ldp x29, x30, [sp], #176\n"
        "	ret\n"
        ".size test_regs_switch, .-test_regs_switch\n");
#endif

#ifdef NREGS
#define SEED_MAIN UINT64_C(0x1000000000000000)
#define SEED_OTHER UINT64_C(0x7000000000000000)
#define ROUNDS 5

static uint64_t other_out[NREGS];
static int other_rounds, other_bad;

static int regs_mismatches(const uint64_t *out, uint64_t seed)
{
	int bad = 0;

	for (int i = 0; i < NREGS; i++) {
		if (out[i] != seed + 1 + (uint64_t)i) {
			print_error("register #%d: %#llx, expected %#llx\n", i,
			            (unsigned long long)out[i],
			            (unsigned long long)(seed + 1 + (uint64_t)i));
			bad++;
		}
	}
	return bad;
}

static void regs_entry(void *arg)
{
	for (;;) {
		uint64_t seed = SEED_OTHER + (uint64_t)other_rounds * 0x100;

		test_regs_switch(&a_ctx, &main_ctx, other_out, seed);
		other_bad += regs_mismatches(other_out, seed);
		other_rounds++;
	}
}
#endif

static void test_callee_saved_registers(void **state)
{
#ifdef NREGS
	void *stack = stack_new(STACK_BYTES);
	uint64_t out[NREGS];

	other_rounds = other_bad = 0;
	green__ctx_init(&a_ctx, stack, STACK_BYTES, regs_entry, NULL);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t seed = SEED_MAIN + (uint64_t)r * 0x100;

		memset(out, 0, sizeof(out));
		test_regs_switch(&main_ctx, &a_ctx, out, seed);
		assert_int_equal(regs_mismatches(out, seed), 0);
	}
	/* The other side resumed ROUNDS-1 times and checked each time. */
	assert_int_equal(other_rounds, ROUNDS - 1);
	assert_int_equal(other_bad, 0);
	stack_delete(stack, STACK_BYTES);
	assert_none_alive();
#else
	skip();
#endif
}

/* ---- floating-point control state ---------------------------------------------- */

/* Rounding-control bits as the hardware holds them (not via fenv, which on
 * x86_64 looks at only one of the two units). */
struct fpctl {
	unsigned int a, b; /* x86_64: MXCSR and x87 CW; aarch64: FPCR and 0 */
};

static struct fpctl fpctl_read(void)
{
	struct fpctl c = {0, 0};

#if defined(__x86_64__)
	unsigned int mxcsr;
	unsigned short cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	c.a = mxcsr & 0xffc0; /* control bits, not the sticky flags */
	c.b = cw;
#elif defined(__aarch64__)
	uint64_t fpcr;

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	c.a = (unsigned int)fpcr;
#else
	c.a = (unsigned int)fegetround();
#endif
	return c;
}

static bool fpctl_equal(struct fpctl x, struct fpctl y)
{
	return x.a == y.a && x.b == y.b;
}

static struct fpctl fp_other_initial, fp_other_set, fp_other_after;

static void fp_entry(void *arg)
{
	fp_other_initial = fpctl_read();
	fesetround(FE_UPWARD);
	fp_other_set = fpctl_read();
	green__ctx_switch(&a_ctx, &main_ctx);
	/* main switched to FE_DOWNWARD meanwhile; ours must be untouched */
	fp_other_after = fpctl_read();
	for (;;)
		green__ctx_switch(&a_ctx, &main_ctx);
}

static void test_fp_control_state(void **state)
{
	void *stack = stack_new(STACK_BYTES);
	struct fpctl nearest, down;

	assert_int_equal(fesetround(FE_TONEAREST), 0);
	nearest = fpctl_read();
	green__ctx_init(&a_ctx, stack, STACK_BYTES, fp_entry, NULL);

	green__ctx_switch(&main_ctx, &a_ctx);
	/* A new context starts with its creator's modes ... */
	assert_true(fpctl_equal(fp_other_initial, nearest));
	/* ... its own change really changed the hardware state ... */
	assert_false(fpctl_equal(fp_other_set, nearest));
	/* ... and does not leak back into this one. */
	assert_true(fpctl_equal(fpctl_read(), nearest));
	assert_int_equal(fegetround(), FE_TONEAREST);

	fesetround(FE_DOWNWARD);
	down = fpctl_read();
	green__ctx_switch(&main_ctx, &a_ctx);
	assert_true(fpctl_equal(fp_other_after, fp_other_set));
	assert_true(fpctl_equal(fpctl_read(), down));
	assert_int_equal(fegetround(), FE_DOWNWARD);

	fesetround(FE_TONEAREST);
	stack_delete(stack, STACK_BYTES);
	assert_none_alive();
}

/* No hub was ever created by all of the above. */
static void test_no_hub_touched(void **state)
{
	struct green_stats st;

	green_stats(&st);
	assert_int_equal(st.hubs, 0);
	assert_none_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_stack_bounds_and_alignment),
		cmocka_unit_test(test_callee_saved_registers),
		cmocka_unit_test(test_fp_control_state),
		cmocka_unit_test(test_no_hub_touched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
