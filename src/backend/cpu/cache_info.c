/* The cache hierarchy, read once from sysfs (Linux; L1d and L2 from the C
 * library's reading of CPUID where a VM hides sysfs's cache directory),
 * and what follows from it: which outputs are written with non-temporal
 * stores.
 *
 * Why streaming depends on the working set and the machine: a streamed
 * store skips the read-for-ownership of each output line (a third of a
 * binary map's traffic) but also leaves the output out of the caches.
 * What decides is whether the data a kernel touches -- its inputs, its
 * output, and what else is live and cycles through the same buffers --
 * stays in the last-level cache from one call to the next:
 *  - jit(slow_f) reads 16 MB and writes 16 MB into the buffer its last
 *    call freed. Where 32 MB stay cached (the Xeon model 207 reports
 *    300 MiB; the Zen 5 guest of the seventh session holds it though its
 *    CPUID says nothing true) plain stores run at memcpy's speed and
 *    streamed ones at ~1.4x; where the L3 is smaller (round 1's Zen 5
 *    guest, 16 MiB per CPU) streaming wins.
 *  - eager slow_f keeps six 16 MB results live: streaming its outputs ran
 *    ~20% faster than plain stores on that same Zen 5 guest.
 * So the rule is: stream an output of at least 4 MiB when the working set
 * exceeds the cache budget (jx_cpu_cache_budget). The jit weighs its
 * program's buffers; eager kernels weigh the bytes of array buffers in
 * use (jx_buffer_live_bytes).
 *
 * The budget: with sysfs, twice glibc memcpy's non-temporal threshold
 * (3/4 of the L3's share per CPU, which glibc compares with one copy's
 * size, half its working set). Without sysfs the L3 CPUID reports cannot
 * be trusted (a Zen 5 guest read 508 MiB, the whole chip's, with no word
 * of the share per CPU), so it is measured: cache_probe.c times plain and
 * streamed copies of growing sizes. JX_CACHE_BUDGET sets it;
 * JX_STREAM_MIN_BYTES=n streams every output of n bytes or more,
 * whatever the working set (for measurements and tests). */
#include "backend/cpu/kernels.h"
#include "core/core.h"

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
    c.l3_from_sysfs = r.l3 > 0;
    atomic_store_explicit(&state, 2, memory_order_release);
  } else {
    while (atomic_load_explicit(&state, memory_order_acquire) != 2) {}
  }
  return &c;
}

/* an environment variable's byte count; -1 when unset or empty */
static int64_t env_bytes(const char *name) {
  const char *env = getenv(name);
  return env && *env ? strtoll(env, NULL, 10) : -1;
}

enum { STREAM_FLOOR = 4 << 20 }; /* smaller outputs are never streamed */

int64_t jx_cpu_stream_min_bytes(void) {
  static _Atomic int64_t cached = -1;
  int64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v >= 0) return v;
  v = env_bytes("JX_STREAM_MIN_BYTES");
  if (v >= 0 && v < STREAM_FLOOR) v = STREAM_FLOOR;
  if (v < 0) v = 0; /* 0: no override, the working-set rule decides */
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}

int64_t jx_cpu_cache_budget(void) {
  static _Atomic int64_t cached = -1;
  int64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v >= 0) return v;
  const char *how = "JX_CACHE_BUDGET";
  v = env_bytes(how);
  if (v < 0) {
    const jx_cpu_cache_sizes *c = jx_cpu_caches();
    if (c->l3_from_sysfs) {
      v = c->l3 / c->l3_cpus * 3 / 2, how = "sysfs L3 share";
    } else {
      v = jx_cpu_probe_cache_budget(), how = "measured (no sysfs cache directory)";
    }
  }
  if (v < 2 * STREAM_FLOOR) v = 2 * STREAM_FLOOR;
  if (jx_diag_enabled("cache")) jx_diag("cache budget %lld MiB (%s)", (long long)(v >> 20), how);
  atomic_store_explicit(&cached, v, memory_order_relaxed);
  return v;
}

bool jx_cpu_stream_output(int64_t out_bytes, int64_t working_set) {
  const int64_t forced = jx_cpu_stream_min_bytes();
  if (forced) return out_bytes >= forced;
  return out_bytes >= STREAM_FLOOR && working_set > jx_cpu_cache_budget();
}
