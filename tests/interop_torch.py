"""jx <-> PyTorch through DLPack, without copies (run by test_interop).

Usage: interop_torch.py path/to/libjx.so

jx arrays go to torch.utils.dlpack.from_dlpack as "dltensor" capsules made
with ctypes (the DLManagedTensor jx_to_dlpack returns), torch tensors come
back through jx_from_dlpack; both sides must see the same memory, and the
deleters must run exactly once.
"""
import ctypes as C
import gc
import sys

import torch
import torch.utils.dlpack as tdl

lib = C.CDLL(sys.argv[1])
P = C.c_void_p
for name, res, args in [
    ("jx_array", P, [C.c_int, C.c_int, C.POINTER(C.c_int64), P]),
    ("jx_from_buffer", P, [C.c_int, C.c_int, C.POINTER(C.c_int64), C.POINTER(C.c_int64), P, P, P]),
    ("jx_to_dlpack", P, [P]),
    ("jx_from_dlpack", P, [P]),
    ("jx_data_ptr", P, [P]),
    ("jx_sum", P, [P]),
    ("jx_astype", P, [P, C.c_int]),
    ("jx_item", C.c_double, [P]),
    ("jx_ok", C.c_bool, [P]),
    ("jx_error", C.c_char_p, [P]),
    ("jx_read", C.c_int, [P, C.c_int, P, C.c_size_t]),
    ("jx_pool_push", None, []),
    ("jx_pool_pop", None, []),
]:
    f = getattr(lib, name)
    f.restype, f.argtypes = res, args

capsule_new = C.pythonapi.PyCapsule_New
capsule_new.restype, capsule_new.argtypes = C.py_object, [P, C.c_char_p, P]
capsule_ptr = C.pythonapi.PyCapsule_GetPointer
capsule_ptr.restype, capsule_ptr.argtypes = P, [C.py_object, C.c_char_p]
capsule_rename = C.pythonapi.PyCapsule_SetName
capsule_rename.restype, capsule_rename.argtypes = C.c_int, [C.py_object, C.c_char_p]
USED = C.c_char_p(b"used_dltensor")  # must outlive the capsules

JX_BOOL, JX_I32, JX_I64, JX_U32, JX_F32, JX_F64 = range(6)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("interop_torch: FAILED:", what)


def shape(*dims):
    return (C.c_int64 * len(dims))(*dims), len(dims)


def jx_to_torch(x):
    t = lib.jx_to_dlpack(x)
    check(t, "jx_to_dlpack gave NULL")
    return tdl.from_dlpack(capsule_new(t, b"dltensor", None))


def torch_to_jx(t):
    cap = tdl.to_dlpack(t)
    x = lib.jx_from_dlpack(capsule_ptr(cap, b"dltensor"))
    capsule_rename(cap, USED)  # consumed: jx calls the deleter
    return x


# jx -> torch: the same memory, the values jx wrote
lib.jx_pool_push()
dims, nd = shape(2, 3)
x = lib.jx_array(JX_F32, nd, dims, (C.c_float * 6)(0, 1, 2, 3, 4, 5))
t = jx_to_torch(x)
check(t.data_ptr() == lib.jx_data_ptr(x), "jx -> torch copied")
check(t.dtype == torch.float32 and tuple(t.shape) == (2, 3), "jx -> torch: %s %s" % (t.dtype, tuple(t.shape)))
check(t.tolist() == [[0, 1, 2], [3, 4, 5]], "jx -> torch values %s" % t.tolist())
lib.jx_pool_pop()  # jx lets go; torch's reference keeps the buffer
check(t.sum().item() == 15, "torch reads after jx's pool is gone")
del t

# the deleter of memory wrapped by jx_from_buffer runs once, when torch
# drops the last reference (jx's array went first)
deleted = []
DELETER = C.CFUNCTYPE(None, P, P)
on_delete = DELETER(lambda p, ctx: deleted.append(p))
mem = (C.c_double * 4)(1, 2, 3, 4)
lib.jx_pool_push()
dims, nd = shape(4)
w = lib.jx_from_buffer(JX_F64, nd, dims, None, C.cast(mem, P), C.cast(on_delete, P), None)
check(lib.jx_data_ptr(w) == C.addressof(mem), "from_buffer copied aligned memory")
t = jx_to_torch(w)
check(t.data_ptr() == C.addressof(mem), "from_buffer -> torch copied")
lib.jx_pool_pop()
check(deleted == [], "deleter ran while torch held the memory")
del t
gc.collect()
check(deleted == [C.addressof(mem)], "deleter calls after torch let go: %s" % deleted)

# torch -> jx: zero-copy for every dtype jx shares with torch (bool where
# torch exports it: 1.13 refuses "Bool type is not supported by dlpack")
dtypes = [torch.int32, torch.int64, torch.float32, torch.float64,
          torch.int8, torch.uint8, torch.int16, torch.float16, torch.bfloat16]  # (#19)
try:
    tdl.to_dlpack(torch.ones(1, dtype=torch.bool))
    dtypes.append(torch.bool)
except RuntimeError:
    print("interop_torch: this torch exports no bool through DLPack; bool skipped")
for dt in dtypes:
    lib.jx_pool_push()
    t = (torch.arange(6) % 2 if dt == torch.bool else torch.arange(6)).to(dt).reshape(2, 3)
    x = torch_to_jx(t)
    check(lib.jx_ok(x), "torch %s -> jx: %s" % (dt, lib.jx_error(x)))
    check(lib.jx_data_ptr(x) == t.data_ptr(), "torch %s -> jx copied" % dt)
    want = t.to(torch.float64).sum().item()
    check(lib.jx_item(lib.jx_sum(lib.jx_astype(x, JX_F64))) == want, "torch %s -> jx values" % dt)
    lib.jx_pool_pop()

# aliasing as documented: torch's later writes are seen by the jx array
lib.jx_pool_push()
t = torch.arange(6, dtype=torch.float32)
x = torch_to_jx(t)
t[0] = 100
check(lib.jx_item(lib.jx_sum(x)) == 115, "jx does not see torch's write")
lib.jx_pool_pop()

# strided (a transpose) and offset views: copied, values in row-major order
lib.jx_pool_push()
base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
for view in [base.t(), base[1:, 1:3], base[:, ::2]]:
    x = torch_to_jx(view)
    n = view.numel()
    out = (C.c_double * n)()
    check(lib.jx_read(x, JX_F64, out, 8 * n) == 0, "jx_read of an imported view")
    check(list(out) == view.contiguous().flatten().tolist(), "view %s: %s" % (tuple(view.stride()), list(out)))
lib.jx_pool_pop()

# a dtype jx lacks is an error value, and the tensor is still released
lib.jx_pool_push()
x = torch_to_jx(torch.ones(3, dtype=torch.complex64))
check(not lib.jx_ok(x) and b"unsupported dtype" in lib.jx_error(x), "complex64 import: %s" % lib.jx_error(x))
lib.jx_pool_pop()

# and back to torch from jx after a round trip: still the same memory
lib.jx_pool_push()
t = torch.linspace(0, 1, 5, dtype=torch.float64)
x = torch_to_jx(t)
t2 = jx_to_torch(x)
check(t2.data_ptr() == t.data_ptr() and torch.equal(t2, t), "torch -> jx -> torch")
lib.jx_pool_pop()
del t2, t
gc.collect()

print("interop_torch: %s" % ("ok" if not failures else "%d failures" % len(failures)))
sys.exit(1 if failures else 0)
