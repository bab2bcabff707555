/* The params fields of the serialized-jaxpr format, per params kind. */
#include "export/format.h"

/* ------------------------------------------------ params, field by field */

#define R      JX_MAX_RANK
#define AX     0, (JX_MAX_RANK - 1)
#define BIG    (INT64_C(1) << 48)
#define OFF(m) offsetof(jx_params, m)
static const jx_xfield f_convert[] = {
    {F_DTYPE, OFF(convert.dtype), 1, 0, 0}, {F_BOOL, OFF(convert.weak), 1, 0, 1}, {0}};
static const jx_xfield f_reduce[] = {
    {F_I8, OFF(reduce.naxes), 1, 0, R}, {F_I32, OFF(reduce.axes), R, AX}, {0}};
static const jx_xfield f_arg[] = {{F_I32, OFF(arg.axis), 1, AX}, {F_DTYPE, OFF(arg.dtype), 1, 0, 0}, {0}};
static const jx_xfield f_dot[] = {{F_I8, OFF(dot.nc), 1, 0, R},
                                  {F_I8, OFF(dot.nb), 1, 0, R},
                                  {F_I8, OFF(dot.lc), R, AX},
                                  {F_I8, OFF(dot.rc), R, AX},
                                  {F_I8, OFF(dot.lb), R, AX},
                                  {F_I8, OFF(dot.rb), R, AX},
                                  {0}};
static const jx_xfield f_reshape[] = {
    {F_I8, OFF(reshape.ndim), 1, 0, R}, {F_I64, OFF(reshape.shape), R, 0, BIG}, {0}};
static const jx_xfield f_bcast[] = {{F_I8, OFF(bcast.ndim), 1, 0, R},
                                    {F_I8, OFF(bcast.naxes), 1, 0, R},
                                    {F_I64, OFF(bcast.shape), R, 0, BIG},
                                    {F_I32, OFF(bcast.axes), R, AX},
                                    {0}};
static const jx_xfield f_perm[] = {{F_I8, OFF(perm.naxes), 1, 0, R}, {F_I32, OFF(perm.axes), R, AX}, {0}};
static const jx_xfield f_rev[] = {{F_I8, OFF(rev.naxes), 1, 0, R}, {F_I32, OFF(rev.axes), R, AX}, {0}};
static const jx_xfield f_slice[] = {{F_I64, OFF(slice.start), R, -BIG, BIG},
                                    {F_I64, OFF(slice.limit), R, -BIG, BIG},
                                    {F_I64, OFF(slice.stride), R, 0, BIG},
                                    {0}};
static const jx_xfield f_pad[] = {{F_I64, OFF(pad.lo), R, -BIG, BIG},
                                  {F_I64, OFF(pad.hi), R, -BIG, BIG},
                                  {F_I64, OFF(pad.interior), R, 0, BIG},
                                  {0}};
static const jx_xfield f_concat[] = {{F_I32, OFF(concat.axis), 1, AX}, {0}};
/* gather and the scatters share one struct: JAX's dimension numbers */
#define DIMNUMS(m)                                                                                           \
  {F_I8, OFF(m.noffset), 1, 0, R}, {F_I8, OFF(m.ncollapsed), 1, 0, R}, {F_I8, OFF(m.nmap), 1, 0, R},         \
      {F_I8, OFF(m.ivd), 1, 0, R}, {F_I8, OFF(m.mode), 1, 0, 2}, {F_I8, OFF(m.offset), R, AX},               \
      {F_I8, OFF(m.collapsed), R, AX}, {F_I8, OFF(m.map), R, AX}, {F_I64, OFF(m.slice), R, 0, BIG},          \
      {F_BITS64, OFF(m.fill), 1, INT64_MIN, INT64_MAX}, {                                                    \
    0                                                                                                        \
  }
static const jx_xfield f_gather[] = {DIMNUMS(gather)};
static const jx_xfield f_scatter[] = {DIMNUMS(scatter)};
static const jx_xfield f_iota[] = {{F_I32, OFF(iota.axis), 1, AX},
                                   {F_DTYPE, OFF(iota.dtype), 1, 0, 0},
                                   {F_I8, OFF(iota.ndim), 1, 0, R},
                                   {F_I64, OFF(iota.shape), R, 0, BIG},
                                   {0}};
static const jx_xfield f_call[] = {{F_JAXPR, OFF(call.jaxpr), 1, 0, 0}, {0}};
static const jx_xfield f_cond[] = {
    {F_JAXPR, OFF(cond.on_true), 1, 0, 0}, {F_JAXPR, OFF(cond.on_false), 1, 0, 0}, {0}};
static const jx_xfield f_while[] = {{F_JAXPR, OFF(while_.cond), 1, 0, 0},
                                    {F_JAXPR, OFF(while_.body), 1, 0, 0},
                                    {F_I32, OFF(while_.ncconst), 1, 0, 1 << 20},
                                    {F_I32, OFF(while_.nbconst), 1, 0, 1 << 20},
                                    {0}};
static const jx_xfield f_scan[] = {{F_JAXPR, OFF(scan.body), 1, 0, 0},
                                   {F_I32, OFF(scan.nconst), 1, 0, 1 << 20},
                                   {F_I32, OFF(scan.ncarry), 1, 0, 1 << 20},
                                   {F_I64, OFF(scan.length), 1, 0, BIG},
                                   {F_BOOL, OFF(scan.reverse), 1, 0, 1},
                                   {F_BOOL, OFF(scan.dyn), 1, 0, 1},
                                   {0}};
/* round 2's kinds. Window and convolution geometry is bounded (2^16)
 * well past any real model, so that a hostile file cannot ask for
 * astronomically large outputs through them; the rules check the rest */
#define GEO (1 << 16)
#define SP  (JX_MAX_RANK - 2)
static const jx_xfield f_conv[] = {
    {F_I8, OFF(conv.nsp), 1, 0, SP},        {F_I8, OFF(conv.lhs), R, AX},
    {F_I8, OFF(conv.rhs), R, AX},           {F_I8, OFF(conv.out), R, AX},
    {F_I32, OFF(conv.stride), SP, 0, GEO},  {F_I32, OFF(conv.lo), SP, -GEO, GEO},
    {F_I32, OFF(conv.hi), SP, -GEO, GEO},   {F_I32, OFF(conv.lhs_dil), SP, 0, GEO},
    {F_I32, OFF(conv.rhs_dil), SP, 0, GEO}, {F_I32, OFF(conv.fgc), 1, 0, 1 << 24},
    {F_I32, OFF(conv.bgc), 1, 0, 1 << 24},  {0}};
static const jx_xfield f_window[] = {
    {F_I32, OFF(window.window), R, 0, GEO},   {F_I32, OFF(window.stride), R, 0, GEO},
    {F_I32, OFF(window.lo), R, -GEO, GEO},    {F_I32, OFF(window.hi), R, -GEO, GEO},
    {F_I32, OFF(window.base_dil), R, 0, GEO}, {F_I32, OFF(window.win_dil), R, 0, GEO},
    {F_I8, OFF(window.select), 1, 0, 1},      {0}};
static const jx_xfield f_dslice[] = {{F_I64, OFF(dslice.sizes), R, 0, BIG}, {0}};
static const jx_xfield f_sort[] = {
    {F_I32, OFF(sort.axis), 1, AX}, {F_I32, OFF(sort.num_keys), 1, 0, 1 << 20}, {0}};
static const jx_xfield f_cumulative[] = {
    {F_I32, OFF(cumulative.axis), 1, AX}, {F_BOOL, OFF(cumulative.reverse), 1, 0, 1}, {0}};
static const jx_xfield f_bwhile[] = {
    {F_JAXPR, OFF(bwhile.cond), 1, 0, 0},        {F_JAXPR, OFF(bwhile.body), 1, 0, 0},
    {F_I32, OFF(bwhile.ncconst), 1, 0, 1 << 20}, {F_I32, OFF(bwhile.nbconst), 1, 0, 1 << 20},
    {F_I64, OFF(bwhile.max_steps), 1, 0, BIG},   {0}};
static const jx_xfield f_svd[] = {{F_BOOL, OFF(svd.compute_uv), 1, 0, 1}, {0}};
static const jx_xfield f_none[] = {{0}};

/* per params kind; NULL: not serializable (a kind this format predates) */
const jx_xfield *const jx_xf_kind_fields[JX_PK_COUNT] = {
    [JX_PK_NONE] = f_none,
    [JX_PK_CONVERT] = f_convert,
    [JX_PK_REDUCE] = f_reduce,
    [JX_PK_ARG] = f_arg,
    [JX_PK_DOT] = f_dot,
    [JX_PK_RESHAPE] = f_reshape,
    [JX_PK_BCAST] = f_bcast,
    [JX_PK_PERM] = f_perm,
    [JX_PK_REV] = f_rev,
    [JX_PK_SLICE] = f_slice,
    [JX_PK_PAD] = f_pad,
    [JX_PK_CONCAT] = f_concat,
    [JX_PK_GATHER] = f_gather,
    [JX_PK_SCATTER] = f_scatter,
    [JX_PK_IOTA] = f_iota,
    [JX_PK_CALL] = f_call,
    [JX_PK_COND] = f_cond,
    [JX_PK_WHILE] = f_while,
    [JX_PK_SCAN] = f_scan,
    /* round 2 (format 1 still: files without these kinds read as before) */
    [JX_PK_CONV] = f_conv,
    [JX_PK_WINDOW] = f_window,
    [JX_PK_DSLICE] = f_dslice,
    [JX_PK_SORT] = f_sort,
    [JX_PK_CUMULATIVE] = f_cumulative,
    [JX_PK_SVD] = f_svd,
    [JX_PK_BWHILE] = f_bwhile,
};

/* fields added after version 1: a file of an older version lacks them,
 * and they keep jx_params_init's zero */
static const struct {
  jx_params_kind kind;
  size_t off;
  int since;
} added[] = {{JX_PK_SCAN, OFF(scan.dyn), 2}};

int jx_xf_field_since(jx_params_kind k, const jx_xfield *f) {
  for (size_t i = 0; i < sizeof added / sizeof *added; i++)
    if (added[i].kind == k && added[i].off == f->off) return added[i].since;
  return 1;
}
