// jx from C++17: the header's macros (JX_SHAPE, JX_TUPLE, JX_CALL,
// JX_DEBUG_PRINT) have C++ forms, every declaration has C linkage, and a
// captureless lambda is a jx_body. Prints the gradient and exits 0 when
// it is right.
#include <jx.h>

#include <cstdio>
#include <vector>

int main() {
  jx_body loss = [](const jx_t *a, void *) -> jx_t { return jx_sum(jx_mul(a[0], a[0])); };
  jx_pool_push();
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  jx_t x = jx_array(JX_F32, JX_SHAPE(2, 3), v.data());
  jx_fn *g = jx_jit(jx_grad(jx_fn_new(loss, 1, nullptr), 0));
  jx_t pair = JX_TUPLE(x, JX_CALL(g, x));
  static const int statics[] = {1};
  jx_jit_options o = {1, statics, 0, nullptr};
  jx_fn *scaled =
      jx_jit_ex(jx_fn_new([](const jx_t *a, void *) { return jx_mul(a[0], a[1]); }, 2, nullptr), &o);
  jx_t s = JX_CALL(scaled, x, jx_scalar(0.5));
  float gr[6] = {0}, sc[6] = {0};
  bool ok = jx_ok(pair) && jx_read(jx_at(pair, 1), JX_F32, gr, sizeof gr) == 0 &&
            jx_read(s, JX_F32, sc, sizeof sc) == 0 && jx_len(pair) == 2;
  for (int i = 0; i < 6; i++) ok = ok && gr[i] == 2 * v[i] && sc[i] == 0.5f * v[i];
  ok = ok && JX_DEBUG_PRINT("jx_debug_print from C++: {} and {}", x, jx_scalar_int(7)) == nullptr;
  char *str = jx_to_string(jx_at(pair, 1));
  std::printf("grad = %s\n", str ? str : "(null)");
  jx_free_string(str);
  jx_pool_pop();
  std::printf("%s\n", ok ? "C++ test: ok" : "C++ test: WRONG");
  return ok ? 0 : 1;
}
