/* Derivatives of tanh, from JAX's Autodiff Cookbook:
 *
 *   grad_tanh = grad(jnp.tanh)
 *   print(grad_tanh(2.0))                     # 0.070650816
 *   print(grad(grad(jnp.tanh))(2.0))          # -0.13621868
 *   print(grad(grad(grad(jnp.tanh)))(2.0))    # 0.25265405
 *
 * In jx a function is a jx_fn: a C body plus user data. jx_grad takes a
 * jx_fn and returns a new jx_fn, so derivatives of any order are just
 * repeated jx_grad calls. We do it twice: with the built-in jx_tanh, and
 * with tanh written out from jx_exp (the seed's version) — grad does not
 * care how a function is built, only which primitives it calls.
 *
 * Run: build/examples/tanh_derivatives */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>

/* A jx body receives its arguments as an array of jx_t and returns one
 * jx_t. It never frees anything: the transformation that calls it owns the
 * temporaries (they live in a pool that it pops). */
static jx_t tanh_builtin(const jx_t *args, void *user) {
  (void)user;
  return jx_tanh(args[0]);
}

/* tanh(x) = (1 - exp(-2x)) / (1 + exp(-2x)) */
static jx_t tanh_from_exp(const jx_t *args, void *user) {
  (void)user;
  jx_t y = jx_exp(jx_mul(jx_scalar(-2.0), args[0]));
  return jx_div(jx_sub(jx_scalar(1.0), y), jx_add(jx_scalar(1.0), y));
}

static void derivatives(const char *name, jx_body body) {
  jx_fn *f = jx_fn_new(body, 1, NULL);
  jx_fn *d1 = jx_grad(f, 0);  /* grad(tanh)             */
  jx_fn *d2 = jx_grad(d1, 0); /* grad(grad(tanh))       */
  jx_fn *d3 = jx_grad(d2, 0); /* grad(grad(grad(tanh))) */

  /* jx_scalar(2.0) is a weakly typed float, like Python's 2.0: the results
   * are f32, as in JAX. A strongly typed f64 input gives f64 derivatives. */
  jx_t x32 = jx_scalar(2.0), x64 = jx_scalar_of(JX_F64, 2.0);
  printf("%s\n", name);
  printf("  grad(tanh)(2.0)             = %-12.8g  (f64: %.16f)\n", jx_item(JX_CALL(d1, x32)),
         jx_item(JX_CALL(d1, x64)));
  printf("  grad(grad(tanh))(2.0)       = %-12.8g  (f64: %.16f)\n", jx_item(JX_CALL(d2, x32)),
         jx_item(JX_CALL(d2, x64)));
  printf("  grad(grad(grad(tanh)))(2.0) = %-12.8g  (f64: %.16f)\n", jx_item(JX_CALL(d3, x32)),
         jx_item(JX_CALL(d3, x64)));

  /* Every jx_fn we created is freed; each transformation holds its own
   * reference to the function it wraps, so the order does not matter. */
  jx_fn_free(d3), jx_fn_free(d2), jx_fn_free(d1), jx_fn_free(f);
}

int main(void) {
  derivatives("tanh = jx_tanh:", tanh_builtin);
  derivatives("tanh = (1 - exp(-2x)) / (1 + exp(-2x)):", tanh_from_exp);

  /* make_jaxpr shows what grad traces: the forward tanh, then the
   * derivative 1 - tanh(x)^2 applied to the incoming cotangent 1.0. */
  jx_fn *f = jx_fn_new(tanh_builtin, 1, NULL);
  jx_fn *df = jx_grad(f, 0);
  jx_t x = jx_scalar(2.0);
  char *text = jx_make_jaxpr(df, &x);
  printf("\nmake_jaxpr(grad(tanh))(2.0) =\n%s\n", text ? text : "(error)");
  free(text); /* the caller frees the string */
  jx_fn_free(df), jx_fn_free(f);
  return 0;
}
