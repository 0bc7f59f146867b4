/*
 * fuzz.h - what every fuzz target defines: libFuzzer's entry point.  The
 * same targets are built two ways: with clang and -fsanitize=fuzzer for
 * `make fuzz`, and with the normal compiler against replay.c for `make
 * check`, which runs every file of the target's corpus (seeds and the
 * crashes fuzzing found) through it, so a fixed crash stays fixed without
 * clang.
 */
#ifndef GREEND_FUZZ_H
#define GREEND_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
