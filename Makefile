# Makefile - builds libgreen, the preload shim, greend/greenctl, the tests,
# examples and benchmarks with plain GNU make.  Every source list is a
# wildcard, so adding a file never needs an edit here; README.md ("Build")
# documents the targets and variables.

.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# ---- configuration ---------------------------------------------------------

VERSION := $(or $(shell sed -n 's/^.define GREEN_VERSION "\(.*\)"$$/\1/p' include/green.h 2>/dev/null),0.0.0)

CC ?= cc
AR ?= ar
# C++ is only for test programs (tests/helpers/*.cc); they are left out when
# there is no C++ compiler.
ifeq ($(origin CXX),default)
CXX := g++
endif
HAVE_CXX := $(if $(shell command -v $(firstword $(CXX)) 2>/dev/null),1)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PKGLIBDIR ?= $(LIBDIR)/greend
MANDIR ?= $(PREFIX)/share/man
PKGDATADIR ?= $(PREFIX)/share/greend
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

# SAN=1 builds with ASan+UBSan into its own tree, so that a sanitized and a
# normal build can live side by side.
SAN ?= 0
ifeq ($(SAN),1)
B ?= build-san
OPTFLAGS ?= -O1 -g
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
NOUNDEF :=
else
B ?= build
OPTFLAGS ?= -O2 -g
SANFLAGS :=
# Catch a missing symbol when the library is linked, not when it is loaded.
# (Left out under the sanitizers, whose runtime symbols stay undefined.)
NOUNDEF := -Wl,--no-undefined
endif

# The context switch: hand-written assembly where we have it, ucontext else.
ARCH ?= $(patsubst arm64,aarch64,$(shell uname -m))
ASM_ARCHES := x86_64 aarch64
ifneq ($(filter $(ARCH),$(ASM_ARCHES)),)
CTX ?= asm
else
CTX ?= ucontext
endif
ifeq ($(CTX),asm)
ifeq ($(filter $(ARCH),$(ASM_ARCHES)),)
$(error CTX=asm needs ARCH to be one of: $(ASM_ARCHES) (ARCH is $(ARCH)); use CTX=ucontext)
endif
CTX_SRC := libgreen/arch/ctx_$(ARCH).S
CTX_DEF := -DGREEN_CTX_ASM
else ifeq ($(CTX),ucontext)
CTX_SRC := libgreen/arch/ctx_ucontext.c
CTX_DEF := -DGREEN_CTX_UCONTEXT
else
$(error CTX must be asm or ucontext, not '$(CTX)')
endif

# -Werror in CI (CI=true) or on request (WERROR=1); WERROR=0 turns it off.
WERROR ?= $(if $(filter true,$(CI)),1,0)
WERRORFLAG := $(if $(filter 1,$(WERROR)),-Werror)

WARNFLAGS := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
	-Wpointer-arith -Wcast-qual -Wsign-compare -Wno-unused-parameter

# The same warnings for C++, less those that are C only.
CXXWARNFLAGS := $(filter-out -Wstrict-prototypes -Wmissing-prototypes,$(WARNFLAGS)) \
	-Wmissing-declarations

# User CFLAGS/CPPFLAGS/LDFLAGS/LDLIBS (and EXTRA_*) come last so they win.
ALL_CPPFLAGS = -Iinclude $(CTX_DEF) $(CPPFLAGS)
ALL_CFLAGS = -std=gnu11 $(OPTFLAGS) -pthread $(WARNFLAGS) $(WERRORFLAG) \
	$(SANFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
ALL_CXXFLAGS = -std=c++20 $(OPTFLAGS) -pthread $(CXXWARNFLAGS) $(WERRORFLAG) \
	$(SANFLAGS) $(CXXFLAGS) $(EXTRA_CXXFLAGS)
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS) $(EXTRA_LDFLAGS)

# Per-directory compile flags (pattern-specific, so one compile rule serves).
LIBGREEN_FLAGS := -fPIC -fvisibility=hidden -Ilibgreen
# The shim's exports are chosen by preload/preload.map, not by visibility, so
# an interposed libc function needs no attribute to be seen.
PRELOAD_FLAGS := -fPIC -ftls-model=initial-exec -Ilibgreen -Ipreload
GREEND_FLAGS := -Igreend -iquote libgreen -DGREEND_PRELOAD_PATH='"$(PKGLIBDIR)/libgreen-preload.so"'
# -iquote: greend/spawn.h must not hide <spawn.h> from the tests
TESTS_FLAGS := -iquote tests -iquote libgreen -iquote greend -iquote preload
BENCH_FLAGS := -Ilibgreen

$(B)/obj/libgreen/%.o: XFLAGS = $(LIBGREEN_FLAGS)
$(B)/obj/preload/%.o: XFLAGS = $(PRELOAD_FLAGS)
$(B)/obj/greend/%.o: XFLAGS = $(GREEND_FLAGS)
$(B)/obj/tests/%.o: XFLAGS = $(TESTS_FLAGS)
# cleanup handlers run by the unwinder (conf_thread_cancel_unwind.c)
$(B)/obj/tests/helpers/conf_thread_cancel_unwind.o: XFLAGS = $(TESTS_FLAGS) -fexceptions
$(B)/obj/bench/%.o: XFLAGS = $(BENCH_FLAGS)
$(B)/obj/examples/%.o: XFLAGS =

# V=1 shows full command lines.
ifeq ($(V),1)
Q :=
say = @:
else
Q := @
say = @printf '  %-7s %s\n'
endif

# ---- sources and outputs ---------------------------------------------------

comma := ,
objs = $(addprefix $(B)/obj/,$(addsuffix .o,$(basename $(1))))

LIBGREEN_SRCS := $(wildcard libgreen/*.c) $(CTX_SRC)
LIBGREEN_OBJS := $(call objs,$(LIBGREEN_SRCS))
LIBGREEN_A := $(B)/libgreen.a
LIBGREEN_SO := $(B)/libgreen.so

# greend/greend.c and greend/greenctl.c hold the two main()s; every other
# greend/*.c is code they (and the tests) share.
GREEND_MAINS := greend/greend.c greend/greenctl.c
GREEND_COMMON_SRCS := $(filter-out $(GREEND_MAINS),$(wildcard greend/*.c))
GREEND_COMMON_A := $(if $(GREEND_COMMON_SRCS),$(B)/libgreend-common.a)
GREEND_BIN := $(if $(wildcard greend/greend.c),$(B)/greend)
GREENCTL_BIN := $(if $(wildcard greend/greenctl.c),$(B)/greenctl)
GREEND_LDLIBS := -lmicrohttpd -ljansson -lev -lm

PRELOAD_SRCS := $(wildcard preload/*.c)
PRELOAD_OBJS := $(call objs,$(PRELOAD_SRCS))
PRELOAD_MAP := $(wildcard preload/preload.map)
PRELOAD_SO := $(if $(PRELOAD_SRCS),$(B)/libgreen-preload.so)

# tests/test_*.c are the unit tests, tests/helpers/*.c programs they run, and
# any other tests/*.c is support code linked into both.
TEST_SRCS := $(wildcard tests/test_*.c)
# tests/helpers/lib*.c are shared objects the tests preload, not programs.
HELPER_LIB_SRCS := $(wildcard tests/helpers/lib*.c)
HELPER_SRCS := $(filter-out $(HELPER_LIB_SRCS),$(wildcard tests/helpers/*.c))
HELPER_LIBS := $(patsubst tests/%.c,$(B)/tests/%.so,$(HELPER_LIB_SRCS))
TESTSUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TESTSUPPORT_A := $(if $(TESTSUPPORT_SRCS),$(B)/libtestsupport.a)
TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
HELPER_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(HELPER_SRCS))
TEST_LIBS := $(TESTSUPPORT_A) $(GREEND_COMMON_A) $(LIBGREEN_A)
TEST_LDLIBS := -lcmocka -lmicrohttpd -ljansson -lev -lpthread -lm
IT_SCRIPTS := $(sort $(wildcard tests/it_*.sh tests/it_*.py))

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(B)/examples/%,$(EXAMPLE_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRCS))

# tests/fuzz/fuzz_*.c are libFuzzer targets.  `make check` replays each
# one's corpus through it, built with $(CC) against tests/fuzz/replay.c;
# `make fuzz` builds them with clang into $(FUZZ_B) and fuzzes each for
# FUZZ_SECONDS.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_REPLAY_BINS := $(patsubst %,$(B)/tests/fuzz/replay_%,$(FUZZ_NAMES))

ALL_SRCS := $(LIBGREEN_SRCS) $(wildcard greend/*.c) $(PRELOAD_SRCS) \
	$(TEST_SRCS) $(HELPER_SRCS) $(TESTSUPPORT_SRCS) $(EXAMPLE_SRCS) $(BENCH_SRCS) \
	$(FUZZ_SRCS) $(if $(FUZZ_SRCS),tests/fuzz/replay.c)
ALL_OBJS := $(call objs,$(ALL_SRCS))

ALL_TARGETS := $(LIBGREEN_A) $(LIBGREEN_SO) $(GREEND_COMMON_A) $(GREEND_BIN) \
	$(GREENCTL_BIN) $(PRELOAD_SO) $(TEST_BINS) $(HELPER_BINS) $(HELPER_LIBS) \
	$(EXAMPLE_BINS) $(BENCH_BINS) $(FUZZ_REPLAY_BINS)

# tests/helpers/*.cc are C++ programs run like the C helpers; they link with
# nothing of ours and are left out when there is no C++ compiler.
HELPER_CXX_SRCS := $(if $(HAVE_CXX),$(wildcard tests/helpers/*.cc))
HELPER_CXX_BINS := $(patsubst tests/%.cc,$(B)/tests/%,$(HELPER_CXX_SRCS))
ALL_OBJS += $(call objs,$(HELPER_CXX_SRCS))
ALL_TARGETS += $(HELPER_CXX_BINS)

# ---- stamps ----------------------------------------------------------------

# mk/deps.sh installs (or names) the Debian packages we need; it runs once per
# build tree, and again when the script (its package lists) changes.
DEPS_STAMP := $(B)/.deps-ok
DEPS_TEST_STAMP := $(B)/.deps-test-ok

$(DEPS_STAMP): mk/deps.sh
	@mkdir -p $(@D)
	$(Q)bash mk/deps.sh
	@touch $@

# Ordered after the build stamp so two apt-get runs never race under -j.
$(DEPS_TEST_STAMP): mk/deps.sh | $(DEPS_STAMP)
	$(Q)bash mk/deps.sh test
	@touch $@

# Everything that decides how objects are built, written to a file that is
# rewritten only when the text changes, so switching CTX or CFLAGS rebuilds
# what it must.  greend's install paths have a stamp of their own: a new
# PREFIX rebuilds greend, not everything.
FLAGS_STAMP := $(B)/.flags
GREEND_FLAGS_STAMP := $(B)/.flags-greend

$(FLAGS_STAMP): STAMP_TEXT = $(CC) | $(ALL_CPPFLAGS) | $(ALL_CFLAGS) | \
	$(ALL_LDFLAGS) | $(LDLIBS) | $(NOUNDEF) | $(LIBGREEN_FLAGS) | \
	$(PRELOAD_FLAGS) | $(TESTS_FLAGS) | $(BENCH_FLAGS) | $(CXX) | $(ALL_CXXFLAGS)
$(GREEND_FLAGS_STAMP): STAMP_TEXT = $(GREEND_FLAGS)

$(FLAGS_STAMP) $(GREEND_FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(STAMP_TEXT))' | cmp -s - $@ || \
		printf '%s\n' '$(subst ','\'',$(STAMP_TEXT))' >$@

# ---- rules -----------------------------------------------------------------

.PHONY: all check bench demo stress install uninstall deb clean FORCE
FORCE:

all: $(ALL_TARGETS)

$(B)/obj/%.o: %.c $(FLAGS_STAMP) | $(DEPS_STAMP)
	$(say) CC $<
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(XFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/obj/%.o: %.cc $(FLAGS_STAMP) | $(DEPS_STAMP)
	$(say) CXX $<
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_CPPFLAGS) $(XFLAGS) $(ALL_CXXFLAGS) -MMD -MP -c -o $@ $<

$(B)/obj/%.o: %.S $(FLAGS_STAMP) | $(DEPS_STAMP)
	$(say) AS $<
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(XFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Say plainly which file a CTX choice is missing.
$(CTX_SRC):
	@echo 'CTX=$(CTX) (ARCH=$(ARCH)) needs $@, which does not exist' >&2; exit 1

# An archive is rebuilt from scratch so objects of deleted sources leave it.
define archive
	$(say) AR $@
	@rm -f $@
	$(Q)$(AR) rcs $@ $^
endef

$(LIBGREEN_A): $(LIBGREEN_OBJS)
	$(archive)

$(LIBGREEN_SO): $(LIBGREEN_OBJS) $(FLAGS_STAMP)
	$(say) LD $@
	$(Q)$(CC) -shared -Wl,-soname,libgreen.so.0 -Wl,-z,now $(NOUNDEF) $(ALL_LDFLAGS) \
		-o $@ $(LIBGREEN_OBJS) -lev $(LDLIBS)
	@ln -sf libgreen.so $(B)/libgreen.so.0

$(B)/libgreend-common.a: $(call objs,$(GREEND_COMMON_SRCS))
	$(archive)

$(B)/libtestsupport.a: $(call objs,$(TESTSUPPORT_SRCS))
	$(archive)

$(B)/greend $(B)/greenctl: $(B)/%: $(B)/obj/greend/%.o $(GREEND_COMMON_A) \
		$(LIBGREEN_A) $(FLAGS_STAMP)
	$(say) LD $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(GREEND_COMMON_A) $(LIBGREEN_A) \
		$(GREEND_LDLIBS) $(LDLIBS)

$(B)/libgreen-preload.so: $(PRELOAD_OBJS) $(LIBGREEN_OBJS) $(PRELOAD_MAP) \
		$(FLAGS_STAMP)
	$(say) LD $@
	$(Q)$(CC) -shared $(NOUNDEF) -Wl,-z,now \
		$(addprefix -Wl$(comma)--version-script=,$(PRELOAD_MAP)) \
		$(ALL_LDFLAGS) -o $@ $(PRELOAD_OBJS) $(LIBGREEN_OBJS) \
		-ldl -lev -lpthread $(LDLIBS)

$(TEST_BINS) $(HELPER_BINS): $(B)/tests/%: $(B)/obj/tests/%.o $(TEST_LIBS) \
		$(FLAGS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_LIBS) $(TEST_LDLIBS) $(LDLIBS)

$(FUZZ_REPLAY_BINS): $(B)/tests/fuzz/replay_%: $(B)/obj/tests/fuzz/fuzz_%.o \
		$(B)/obj/tests/fuzz/replay.o $(GREEND_COMMON_A) $(LIBGREEN_A) $(FLAGS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/obj/tests/fuzz/replay.o $(GREEND_COMMON_A) \
		$(LIBGREEN_A) $(GREEND_LDLIBS) $(LDLIBS)

$(HELPER_LIBS): $(B)/tests/%.so: tests/%.c $(FLAGS_STAMP) | $(DEPS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC -shared $(ALL_LDFLAGS) -o $@ $< $(LDLIBS)

$(EXAMPLE_BINS): $(B)/examples/%: $(B)/obj/examples/%.o $(FLAGS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< -lev $(LDLIBS)

$(BENCH_BINS): $(B)/bench/%: $(B)/obj/bench/%.o $(LIBGREEN_A) $(FLAGS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -Wl,-z,now -o $@ $< $(LIBGREEN_A) -lev -lpthread -lm $(LDLIBS)

$(HELPER_CXX_BINS): $(B)/tests/%: $(B)/obj/tests/%.o $(FLAGS_STAMP)
	$(say) LD $@
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_LDFLAGS) -o $@ $< $(LDLIBS)

$(call objs,$(wildcard greend/*.c)): $(GREEND_FLAGS_STAMP)

-include $(ALL_OBJS:.o=.d)

# ---- running ---------------------------------------------------------------

# T=PATTERN[,PATTERN...] runs only the tests whose name contains a pattern.
check: all $(DEPS_TEST_STAMP)
	$(Q)B='$(abspath $(B))' T='$(T)' bash mk/check.sh $(TEST_BINS) $(FUZZ_REPLAY_BINS) \
		-- $(IT_SCRIPTS)

bench: all
	$(Q)if [ -f bench/run.sh ]; then \
		B='$(abspath $(B))' $(if $(QUICK),QUICK='$(QUICK)') bash bench/run.sh; \
	else \
		echo 'make bench: there is no bench/run.sh yet'; \
	fi

# The long abuse run of greend (not in CI): STRESS_SECONDS shortens it.
stress: all
	$(Q)B='$(abspath $(B))' STRESS_SECONDS='$(STRESS_SECONDS)' python3 tests/stress/greend_stress.py

demo: all
	$(Q)test -x '$(B)/greend' || { echo 'make demo: $(B)/greend was not built' >&2; exit 1; }
	exec '$(B)/greend' -f -c conf/demo.json

# ---- fuzzing ---------------------------------------------------------------

# `make fuzz [FUZZ_SECONDS=N]`: each target for N seconds (60 by default),
# starting from tests/fuzz/corpus/NAME and keeping what it learns in
# $(FUZZ_B)/corpus/NAME.  A crash stops the run and is saved as
# $(FUZZ_B)/crashes/NAME-*; once fixed, copy it into tests/fuzz/corpus/NAME
# so that `make check` replays it from then on.  clang is needed here only.
FUZZ_B ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BINS := $(patsubst %,$(FUZZ_B)/fuzz_%,$(FUZZ_NAMES))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIB_SRCS := $(GREEND_COMMON_SRCS) libgreen/parse.c
FUZZ_DEPS_STAMP := $(FUZZ_B)/.deps-ok

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	$(Q)for t in $(FUZZ_NAMES); do \
		mkdir -p '$(FUZZ_B)'/corpus/$$t '$(FUZZ_B)'/crashes || exit 1; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		'$(FUZZ_B)'/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix='$(FUZZ_B)'/crashes/$$t- \
			'$(FUZZ_B)'/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

$(FUZZ_DEPS_STAMP): mk/deps.sh
	@mkdir -p $(@D)
	$(Q)bash mk/deps.sh fuzz
	@touch $@

$(FUZZ_BINS): $(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRCS) \
		$(wildcard greend/*.h libgreen/parse.h tests/fuzz/*.h) | $(FUZZ_DEPS_STAMP)
	$(say) FUZZCC $@
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Iinclude -iquote libgreen -iquote greend -o $@ $< \
		$(FUZZ_LIB_SRCS) $(GREEND_LDLIBS) -pthread

# ---- installing ------------------------------------------------------------

INSTALL ?= install
# Unit files may name paths as @BINDIR@, @LIBDIR@, @PKGLIBDIR@ or @PREFIX@.
SUBST := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@PKGLIBDIR@|$(PKGLIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

MAN_PAGES := $(wildcard man/*.[1-8])
UNIT_FILES := $(wildcard systemd/*.service)

install: $(LIBGREEN_A) $(LIBGREEN_SO) $(GREEND_BIN) $(GREENCTL_BIN) $(PRELOAD_SO)
	$(INSTALL) -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(PKGCONFIGDIR)'
	$(INSTALL) -m 644 $(LIBGREEN_A) '$(DESTDIR)$(LIBDIR)/libgreen.a'
	$(INSTALL) -m 644 $(LIBGREEN_SO) '$(DESTDIR)$(LIBDIR)/libgreen.so.0'
	ln -sf libgreen.so.0 '$(DESTDIR)$(LIBDIR)/libgreen.so'
	$(INSTALL) -m 644 include/green.h '$(DESTDIR)$(INCLUDEDIR)/green.h'
	$(SUBST) green.pc.in >'$(DESTDIR)$(PKGCONFIGDIR)/green.pc'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/green.pc'
ifneq ($(GREEND_BIN)$(GREENCTL_BIN),)
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)'
	$(INSTALL) -m 755 $(GREEND_BIN) $(GREENCTL_BIN) '$(DESTDIR)$(BINDIR)/'
endif
ifneq ($(PRELOAD_SO),)
	$(INSTALL) -d '$(DESTDIR)$(PKGLIBDIR)'
	$(INSTALL) -m 644 $(PRELOAD_SO) '$(DESTDIR)$(PKGLIBDIR)/libgreen-preload.so'
endif
	$(INSTALL) -d '$(DESTDIR)$(PKGDATADIR)'
	$(INSTALL) -m 644 tools/green-gdb.py '$(DESTDIR)$(PKGDATADIR)/green-gdb.py'
	$(Q)for f in $(MAN_PAGES); do \
		d='$(DESTDIR)$(MANDIR)'/man$${f##*.}; \
		echo "$(INSTALL) -m 644 $$f $$d/"; \
		$(INSTALL) -d "$$d" && $(INSTALL) -m 644 "$$f" "$$d/" || exit 1; \
	done
ifneq ($(UNIT_FILES),)
	$(INSTALL) -d '$(DESTDIR)$(SYSTEMDUNITDIR)'
	$(Q)for f in $(UNIT_FILES); do \
		echo "$(SUBST) $$f >$(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/}"; \
		$(SUBST) "$$f" >'$(DESTDIR)$(SYSTEMDUNITDIR)'/"$${f##*/}" && \
		chmod 644 '$(DESTDIR)$(SYSTEMDUNITDIR)'/"$${f##*/}" || exit 1; \
	done
endif

uninstall:
	rm -f '$(DESTDIR)$(LIBDIR)/libgreen.a' '$(DESTDIR)$(LIBDIR)/libgreen.so.0' \
		'$(DESTDIR)$(LIBDIR)/libgreen.so' '$(DESTDIR)$(INCLUDEDIR)/green.h' \
		'$(DESTDIR)$(PKGCONFIGDIR)/green.pc' \
		'$(DESTDIR)$(BINDIR)/greend' '$(DESTDIR)$(BINDIR)/greenctl' \
		'$(DESTDIR)$(PKGLIBDIR)/libgreen-preload.so'
	rmdir '$(DESTDIR)$(PKGLIBDIR)' 2>/dev/null || true
	rm -f '$(DESTDIR)$(PKGDATADIR)/green-gdb.py'
	rmdir '$(DESTDIR)$(PKGDATADIR)' 2>/dev/null || true
	$(Q)for f in $(MAN_PAGES); do \
		echo "rm -f $(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}"; \
		rm -f '$(DESTDIR)$(MANDIR)'/man$${f##*.}/"$${f##*/}"; \
	done
	$(Q)for f in $(UNIT_FILES); do \
		echo "rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/}"; \
		rm -f '$(DESTDIR)$(SYSTEMDUNITDIR)'/"$${f##*/}"; \
	done

# ---- Debian packages -------------------------------------------------------

# dpkg-buildpackage writes its packages to the parent of the tree it builds,
# so it builds a copy of this tree inside $(DEB_DIR); greend_*.deb,
# libgreen0_*.deb and libgreen-dev_*.deb land in $(DEB_DIR) itself.
DEB_DIR := $(B)/deb
DEB_SRC := $(DEB_DIR)/greend-$(VERSION)

deb:
	$(Q)bash mk/deps.sh deb
	rm -rf '$(DEB_DIR)'
	mkdir -p '$(DEB_SRC)'
	tar -c --exclude=./.git --exclude=./build --exclude='./build-*' --exclude='./$(B)' -f - . | \
		tar -x -C '$(DEB_SRC)'
	cd '$(DEB_SRC)' && dpkg-buildpackage -us -uc -b
	rm -rf '$(DEB_SRC)'
	$(Q)if command -v lintian >/dev/null; then \
		echo 'lintian $(DEB_DIR)/*.changes'; \
		lintian --fail-on error '$(DEB_DIR)'/*.changes; \
	else \
		echo 'make deb: lintian is not installed; not checked'; \
	fi
	@ls -1 '$(DEB_DIR)'/*.deb

clean:
	rm -rf $(sort build build-san $(B) $(FUZZ_B))
