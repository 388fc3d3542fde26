/* Sizes as the config spells them: "123", "50G" (K/M/G/T, base 1024), "10%". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* 1 EiB: more than any filesystem ckptd will see, and far enough from 2^64
 * that sums of sizes (floor + checkpoint) cannot wrap. */
#define SIZE_BYTES_MAX      (UINT64_C(1) << 60)
#define SIZE_BYTES_MAX_TEXT "1048576T (2^60 bytes)"

struct size_spec {
        bool set;
        bool is_percent;
        double percent; /* 0..100 when is_percent */
        uint64_t bytes; /* otherwise */
};

/* Parse s into *ret; -EINVAL on syntax, -ERANGE above SIZE_BYTES_MAX or 100%. */
int size_parse(const char *s, struct size_spec *ret);
/* Resolve spec against a filesystem of total_bytes; 0 when unset. */
uint64_t size_resolve(const struct size_spec *spec, uint64_t total_bytes);
/* Format bytes as "1.5G", "512K" or "0B" into buf (at least 16 bytes); returns buf. */
char *size_format(uint64_t bytes, char *buf, size_t len);
/* Format spec as given ("10%", "50G") into buf; returns buf. */
char *size_spec_format(const struct size_spec *spec, char *buf, size_t len);
