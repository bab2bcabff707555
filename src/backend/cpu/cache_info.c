/* The cache hierarchy, read once from sysfs (Linux; L1d and L2 from the C
 * library's reading of CPUID where a VM hides sysfs's cache directory),
 * and what follows from it: the size from which outputs are written with
 * non-temporal stores.
 *
 * Why the streaming threshold depends on the machine: a streamed store
 * skips the read-for-ownership of each output line (a third of a binary
 * map's traffic) but also leaves the output out of the caches. Where the
 * last-level cache is small next to the output (the 32 MiB L3 of the Zen 5
 * box, a 16 MB product) streaming wins; where it holds the output (the
 * Xeon model 207 reports 300 MiB) plain stores into the cache win, and
 * streaming made jit(slow_f) run at ~1.5x glibc's memcpy of the same bytes.
 * glibc's memcpy makes the same choice with a threshold of 3/4 of the
 * last-level cache's share per thread (114 MiB on the Xeon, 12 MiB on
 * the Zen 5 VM); jx uses the same rule, never below 4 MiB.
 * JX_STREAM_MIN_BYTES overrides it (for measurements). */
#include "backend/cpu/kernels.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The first line of a sysfs file into buf; false when unreadable */
static bool read_line(const char *path, char *buf, int cap) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  const bool ok = fgets(buf, cap, f) != NULL;
  fclose(f);
  return ok;
}

/* "48K", "2048K", "300M" -> bytes; 0 when unreadable */
static int64_t read_size(const char *path) {
  char buf[64];
  if (!read_line(path, buf, sizeof buf)) return 0;
  char *end;
  long long v = strtoll(buf, &end, 10);
  if (v <= 0) return 0;
  if (*end == 'K')
    v <<= 10;
  else if (*end == 'M')
    v <<= 20;
  else if (*end == 'G')
    v <<= 30;
  return (int64_t)v;
}

/* CPUs in a sysfs list such as "0-1,4,6-7" */
static int count_cpus(const char *path) {
  char buf[4096];
  if (!read_line(path, buf, sizeof buf)) return 0;
  int n = 0;
  for (char *p = buf; *p && *p != '\n';) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p) break;
    if (*end == '-') b = strtol(end + 1, &end, 10);
    n += b >= a ? (int)(b - a + 1) : 0;
    p = *end == ',' ? end + 1 : end;
  }
  return n;
}

static void read_caches(jx_cpu_cache_sizes *c) {
  for (int i = 0; i < 8; i++) {
    char path[128], type[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    if (!read_line(path, type, sizeof type)) break;
    if (!strncmp(type, "Instruction", 11)) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    const int64_t level = read_size(path);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    const int64_t size = read_size(path);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/shared_cpu_list", i);
    if (level == 1)
      c->l1d = size;
    else if (level == 2)
      c->l2 = size;
    else if (level == 3)
      c->l3 = size, c->l3_cpus = count_cpus(path);
  }
}

/* L1d and L2, where sysfs did not give them, from glibc's sysconf
 * (CPUID; 0 or -1 where it knows none): per core, so they can be trusted.
 * Not the L3: a Zen 5 guest without sysfs's cache directory read 48 KiB /
 * 1 MiB / 508 MiB, an L3 that is the whole chip's (16 CCDs of 32 MiB)
 * with no word of the share per CPU, which would turn streaming stores
 * off where a 32 MiB L3 is what the data really has. */
static void read_sysconf(jx_cpu_cache_sizes *c) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
  long v;
  if (c->l1d <= 0 && (v = sysconf(_SC_LEVEL1_DCACHE_SIZE)) > 0) c->l1d = v;
  if (c->l2 <= 0 && (v = sysconf(_SC_LEVEL2_CACHE_SIZE)) > 0) c->l2 = v;
#else
  (void)c;
#endif
}

const jx_cpu_cache_sizes *jx_cpu_caches(void) {
  static jx_cpu_cache_sizes c;
  static atomic_int state; /* 0 unread, 1 reading, 2 read */
  int s = atomic_load_explicit(&state, memory_order_acquire);
  if (s == 2) return &c;
  int expect = 0;
  if (atomic_compare_exchange_strong(&state, &expect, 1)) {
    jx_cpu_cache_sizes r = {0};
    read_caches(&r);
    read_sysconf(&r);
    /* what a machine without sysfs most likely has */
    c.l1d = r.l1d > 0 ? r.l1d : 32 << 10;
    c.l2 = r.l2 > 0 ? r.l2 : 512 << 10;
    c.l3 = r.l3 > 0 ? r.l3 : c.l2 > (int64_t)8 << 20 ? c.l2 : (int64_t)8 << 20;
    c.l3_cpus = r.l3_cpus > 0 ? r.l3_cpus : 1;
    atomic_store_explicit(&state, 2, memory_order_release);
  } else {
    while (atomic_load_explicit(&state, memory_order_acquire) != 2) {}
  }
  return &c;
}

int64_t jx_cpu_stream_min_bytes(void) {
  static _Atomic int64_t cached = -1;
  int64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v >= 0) return v;
  const char *env = getenv("JX_STREAM_MIN_BYTES");
  if (env && *env) {
    v = strtoll(env, NULL, 10);
  } else {
    const jx_cpu_cache_sizes *c = jx_cpu_caches();
    v = c->l3 / c->l3_cpus * 3 / 4;
  }
  if (v < (int64_t)4 << 20) v = (int64_t)4 << 20;
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}
