/*
 * hash.h - keyed hashing for tables whose keys clients choose (hash.c).
 */
#ifndef PT_CORE_HASH_H
#define PT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of p[0..n) under the 128-bit key k. Little-endian hosts (x86-64, arm64). */
uint64_t pt_siphash24(const uint64_t k[2], const void *p, size_t n);

#endif
