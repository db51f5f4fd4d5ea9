// branchynet's oneDNN addon: the compute behind the 'onednn' tfjs backend
// (src/engine/onednn/). Every function works in place on Float32Arrays owned
// by JS (the tfjs cpu backend's storage): inputs are read and the output
// array, allocated by the caller, is written; nothing is copied in or out
// except filters, which are reordered into oneDNN's blocked layout when the
// chosen implementation wants one. Tensors are NHWC, filters HWIO, as in tfjs.
// All calls are synchronous, on the JS thread; oneDNN parallelises inside
// each call with OpenMP (Debian's libdnnl is built with DNNL_CPU_RUNTIME=OMP).
#include <node_api.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

struct JsError {
  std::string message;
};

engine& eng() {
  static engine e(engine::kind::cpu, 0);
  return e;
}
stream& strm() {
  static stream s(eng());
  return s;
}

// ---------------------------------------------------------------- N-API helpers
napi_value* args(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want) {
    throw JsError{"wrong number of arguments: expected " + std::to_string(want)};
  }
  return argv;
}

// A Float32Array's data and length.
float* f32Any(napi_env env, napi_value v, size_t* length, const char* what) {
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float32_array) {
    throw JsError{std::string(what) + ": expected a Float32Array"};
  }
  return static_cast<float*>(data);
}

// A Float32Array's data, checked to hold `expect` elements.
float* f32(napi_env env, napi_value v, size_t expect, const char* what) {
  size_t length = 0;
  float* data = f32Any(env, v, &length, what);
  if (length != expect) {
    throw JsError{std::string(what) + ": expected " + std::to_string(expect) + " elements, got " +
                  std::to_string(length)};
  }
  return data;
}

bool isNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

std::vector<int64_t> ints(napi_env env, napi_value v, size_t expect, const char* what) {
  uint32_t n = 0;
  bool isArray = false;
  napi_is_array(env, v, &isArray);
  if (!isArray || napi_get_array_length(env, v, &n) != napi_ok || n != expect) {
    throw JsError{std::string(what) + ": expected an array of " + std::to_string(expect) + " integers"};
  }
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    int64_t x = 0;
    if (napi_get_value_int64(env, e, &x) != napi_ok) throw JsError{std::string(what) + ": not an integer"};
    out[i] = x;
  }
  return out;
}

// A [rows, columns] geometry argument of `fn`, both at least 1.
struct Matrix {
  int64_t rows, cols;
};
Matrix matrixGeom(napi_env env, napi_value v, const std::string& fn) {
  auto g = ints(env, v, 2, (fn + " geometry").c_str());
  if (g[0] < 1 || g[1] < 1) throw JsError{fn + ": empty input"};
  return {g[0], g[1]};
}

bool boolean(napi_env env, napi_value v) {
  bool b = false;
  napi_get_value_bool(env, v, &b);
  return b;
}

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const JsError& e) {
    napi_throw_error(env, nullptr, ("onednn addon: " + e.message).c_str());
  } catch (const dnnl::error& e) {
    napi_throw_error(env, nullptr, (std::string("onednn addon: oneDNN error: ") + e.what()).c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("onednn addon: ") + e.what()).c_str());
  }
  return nullptr;
}

// ---------------------------------------------------------------- convolution
// Geometry: [N, H, W, Ci, Co, Fh, Fw, Ho, Wo, sh, sw, dh, dw, pt, pl, pb, pr] (dilations 1-based).
struct ConvGeom {
  int64_t n, h, w, ci, co, fh, fw, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr;
  static ConvGeom from(const std::vector<int64_t>& g) {
    return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15], g[16]};
  }
  std::string key() const {
    std::string k;
    for (int64_t v : {n, h, w, ci, co, fh, fw, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr}) k += std::to_string(v) + ',';
    return k;
  }
  memory::desc src() const { return {{n, ci, h, w}, dt::f32, tag::nhwc}; }
  memory::desc dst() const { return {{n, co, ho, wo}, dt::f32, tag::nhwc}; }
  memory::desc userWeights() const { return {{co, ci, fh, fw}, dt::f32, tag::hwio}; }
  memory::desc anyWeights() const { return {{co, ci, fh, fw}, dt::f32, tag::any}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilates() const { return {dh - 1, dw - 1}; }
  memory::dims padL() const { return {pt, pl}; }
  memory::dims padR() const { return {pb, pr}; }
  convolution_forward::primitive_desc forward(bool bias, bool relu) const {
    memory::desc biasMd = bias ? memory::desc({co}, dt::f32, tag::x) : memory::desc();
    convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, src(), anyWeights(),
                                biasMd, dst(), strides(), dilates(), padL(), padR());
    primitive_attr attr;
    if (relu) {
      post_ops po;
      po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    return convolution_forward::primitive_desc(d, attr, eng());
  }
};

// A filter in the user's HWIO layout, and (when the primitive wants another one) its
// reordered copy; `toPrimitive` true: user -> primitive before the call, false: after.
struct Filter {
  memory user;
  memory prim;
  reorder move;
  bool needsReorder = false;
  Filter() = default;
  Filter(const memory::desc& userMd, const memory::desc& primMd, bool toPrimitive) {
    user = memory(userMd, eng(), DNNL_MEMORY_NONE);
    if (primMd != userMd) {
      needsReorder = true;
      prim = memory(primMd, eng());
      move = toPrimitive ? reorder(user, prim) : reorder(prim, user);
    } else {
      prim = user;
    }
  }
  void set(float* p) { user.set_data_handle(p); }
};

struct ConvFwd {
  convolution_forward prim;
  memory src, dst, bias;
  Filter filter;
};
struct ConvBwdData {
  convolution_backward_data prim;
  memory diffDst, diffSrc;
  Filter filter;
};
struct ConvBwdWeights {
  convolution_backward_weights prim;
  memory src, diffDst;
  Filter filter;
};

std::unordered_map<std::string, std::unique_ptr<ConvFwd>> convFwdCache;
std::unordered_map<std::string, std::unique_ptr<ConvBwdData>> convBwdDataCache;
std::unordered_map<std::string, std::unique_ptr<ConvBwdWeights>> convBwdWeightsCache;

void reorderInto(Filter& f, bool toPrimitive) {
  if (!f.needsReorder) return;
  if (toPrimitive) f.move.execute(strm(), f.user, f.prim);
  else f.move.execute(strm(), f.prim, f.user);
}

ConvFwd& convFwd(const ConvGeom& g, bool bias, bool relu) {
  std::string key = g.key() + (bias ? "b" : "") + (relu ? "r" : "");
  auto it = convFwdCache.find(key);
  if (it != convFwdCache.end()) return *it->second;
  auto pd = g.forward(bias, relu);
  auto c = std::make_unique<ConvFwd>();
  c->prim = convolution_forward(pd);
  c->src = memory(g.src(), eng(), DNNL_MEMORY_NONE);
  c->dst = memory(g.dst(), eng(), DNNL_MEMORY_NONE);
  if (bias) c->bias = memory({{g.co}, dt::f32, tag::x}, eng(), DNNL_MEMORY_NONE);
  c->filter = Filter(g.userWeights(), pd.weights_desc(), true);
  return *convFwdCache.emplace(key, std::move(c)).first->second;
}

ConvBwdData& convBwdData(const ConvGeom& g) {
  std::string key = g.key();
  auto it = convBwdDataCache.find(key);
  if (it != convBwdDataCache.end()) return *it->second;
  auto hint = g.forward(false, false);
  convolution_backward_data::desc d(algorithm::convolution_direct, g.src(), g.anyWeights(), g.dst(), g.strides(),
                                    g.dilates(), g.padL(), g.padR());
  convolution_backward_data::primitive_desc pd(d, eng(), hint);
  auto c = std::make_unique<ConvBwdData>();
  c->prim = convolution_backward_data(pd);
  c->diffSrc = memory(g.src(), eng(), DNNL_MEMORY_NONE);
  c->diffDst = memory(g.dst(), eng(), DNNL_MEMORY_NONE);
  c->filter = Filter(g.userWeights(), pd.weights_desc(), true);
  return *convBwdDataCache.emplace(key, std::move(c)).first->second;
}

ConvBwdWeights& convBwdWeights(const ConvGeom& g) {
  std::string key = g.key();
  auto it = convBwdWeightsCache.find(key);
  if (it != convBwdWeightsCache.end()) return *it->second;
  auto hint = g.forward(false, false);
  convolution_backward_weights::desc d(algorithm::convolution_direct, g.src(), g.anyWeights(), g.dst(),
                                       g.strides(), g.dilates(), g.padL(), g.padR());
  convolution_backward_weights::primitive_desc pd(d, eng(), hint);
  auto c = std::make_unique<ConvBwdWeights>();
  c->prim = convolution_backward_weights(pd);
  c->src = memory(g.src(), eng(), DNNL_MEMORY_NONE);
  c->diffDst = memory(g.dst(), eng(), DNNL_MEMORY_NONE);
  c->filter = Filter(g.userWeights(), pd.diff_weights_desc(), false);
  return *convBwdWeightsCache.emplace(key, std::move(c)).first->second;
}

size_t sz(std::initializer_list<int64_t> dims) {
  size_t s = 1;
  for (int64_t d : dims) s *= static_cast<size_t>(d);
  return s;
}

// conv2d(x, filter, bias | null, y, geom, relu)
napi_value Conv2d(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[6];
    args(env, info, 6, argv);
    ConvGeom g = ConvGeom::from(ints(env, argv[4], 17, "conv2d geometry"));
    float* x = f32(env, argv[0], sz({g.n, g.h, g.w, g.ci}), "conv2d x");
    float* w = f32(env, argv[1], sz({g.fh, g.fw, g.ci, g.co}), "conv2d filter");
    bool hasBias = !isNullish(env, argv[2]);
    float* b = hasBias ? f32(env, argv[2], g.co, "conv2d bias") : nullptr;
    float* y = f32(env, argv[3], sz({g.n, g.ho, g.wo, g.co}), "conv2d y");
    ConvFwd& c = convFwd(g, hasBias, boolean(env, argv[5]));
    c.src.set_data_handle(x);
    c.dst.set_data_handle(y);
    c.filter.set(w);
    reorderInto(c.filter, true);
    std::unordered_map<int, memory> a{{DNNL_ARG_SRC, c.src}, {DNNL_ARG_WEIGHTS, c.filter.prim}, {DNNL_ARG_DST, c.dst}};
    if (hasBias) {
      c.bias.set_data_handle(b);
      a[DNNL_ARG_BIAS] = c.bias;
    }
    c.prim.execute(strm(), a);
    strm().wait();
    return undefinedValue(env);
  });
}

// conv2dBackpropInput(dy, filter, dx, geom)
napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    ConvGeom g = ConvGeom::from(ints(env, argv[3], 17, "conv2dBackpropInput geometry"));
    float* dy = f32(env, argv[0], sz({g.n, g.ho, g.wo, g.co}), "conv2dBackpropInput dy");
    float* w = f32(env, argv[1], sz({g.fh, g.fw, g.ci, g.co}), "conv2dBackpropInput filter");
    float* dx = f32(env, argv[2], sz({g.n, g.h, g.w, g.ci}), "conv2dBackpropInput dx");
    ConvBwdData& c = convBwdData(g);
    c.diffDst.set_data_handle(dy);
    c.diffSrc.set_data_handle(dx);
    c.filter.set(w);
    reorderInto(c.filter, true);
    c.prim.execute(strm(), {{DNNL_ARG_DIFF_DST, c.diffDst}, {DNNL_ARG_WEIGHTS, c.filter.prim}, {DNNL_ARG_DIFF_SRC, c.diffSrc}});
    strm().wait();
    return undefinedValue(env);
  });
}

// conv2dBackpropFilter(x, dy, dw, geom)
napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    ConvGeom g = ConvGeom::from(ints(env, argv[3], 17, "conv2dBackpropFilter geometry"));
    float* x = f32(env, argv[0], sz({g.n, g.h, g.w, g.ci}), "conv2dBackpropFilter x");
    float* dy = f32(env, argv[1], sz({g.n, g.ho, g.wo, g.co}), "conv2dBackpropFilter dy");
    float* dw = f32(env, argv[2], sz({g.fh, g.fw, g.ci, g.co}), "conv2dBackpropFilter dw");
    ConvBwdWeights& c = convBwdWeights(g);
    c.src.set_data_handle(x);
    c.diffDst.set_data_handle(dy);
    c.filter.set(dw);
    c.prim.execute(strm(), {{DNNL_ARG_SRC, c.src}, {DNNL_ARG_DIFF_DST, c.diffDst}, {DNNL_ARG_DIFF_WEIGHTS, c.filter.prim}});
    reorderInto(c.filter, false);
    strm().wait();
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- matmul
// oneDNN's matmul primitive, not dnnl_sgemm: Debian's oneDNN 2.6.3 sgemm corrupts the heap when
// a signal arrives mid-call (reproduced in plain C++ with setitimer; e.g. node --cpu-prof).
struct MatMulPrim {
  matmul prim;
  memory a, b, c, bias;
};
std::unordered_map<std::string, std::unique_ptr<MatMulPrim>> matMulCache;

MatMulPrim& matMulPrim(int64_t batch, int64_t m, int64_t n, int64_t k, bool aBatched, bool bBatched, bool ta, bool tb,
                       bool hasBias, bool relu) {
  std::string key;
  for (int64_t v : {batch, m, n, k, int64_t(aBatched), int64_t(bBatched), int64_t(ta), int64_t(tb), int64_t(hasBias),
                    int64_t(relu)}) {
    key += std::to_string(v) + ',';
  }
  auto it = matMulCache.find(key);
  if (it != matMulCache.end()) return *it->second;
  memory::desc aMd({aBatched ? batch : 1, m, k}, dt::f32, ta ? tag::acb : tag::abc);
  memory::desc bMd({bBatched ? batch : 1, k, n}, dt::f32, tb ? tag::acb : tag::abc);
  memory::desc cMd({batch, m, n}, dt::f32, tag::abc);
  memory::desc biasMd = hasBias ? memory::desc({1, 1, n}, dt::f32, tag::abc) : memory::desc();
  primitive_attr attr;
  if (relu) {
    post_ops po;
    po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  matmul::primitive_desc pd(matmul::desc(aMd, bMd, biasMd, cMd), attr, eng());
  auto p = std::make_unique<MatMulPrim>();
  p->prim = matmul(pd);
  p->a = memory(aMd, eng(), DNNL_MEMORY_NONE);
  p->b = memory(bMd, eng(), DNNL_MEMORY_NONE);
  p->c = memory(cMd, eng(), DNNL_MEMORY_NONE);
  if (hasBias) p->bias = memory(biasMd, eng(), DNNL_MEMORY_NONE);
  return *matMulCache.emplace(key, std::move(p)).first->second;
}

// matMul(a, b, c, [batch, m, n, k, aBatched, bBatched], transA, transB, bias | null, relu)
// c[p] = act(op(a[p]) op(b[p]) + bias): row-major, a/b shared across the batch when not batched.
napi_value MatMul(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[8];
    args(env, info, 8, argv);
    auto d = ints(env, argv[3], 6, "matMul geometry");
    int64_t batch = d[0], m = d[1], n = d[2], k = d[3];
    bool aBatched = d[4] != 0, bBatched = d[5] != 0;
    bool ta = boolean(env, argv[4]), tb = boolean(env, argv[5]);
    float* a = f32(env, argv[0], sz({aBatched ? batch : 1, m, k}), "matMul a");
    float* b = f32(env, argv[1], sz({bBatched ? batch : 1, k, n}), "matMul b");
    float* c = f32(env, argv[2], sz({batch, m, n}), "matMul c");
    bool hasBias = !isNullish(env, argv[6]);
    float* bias = hasBias ? f32(env, argv[6], n, "matMul bias") : nullptr;
    MatMulPrim& p = matMulPrim(batch, m, n, k, aBatched, bBatched, ta, tb, hasBias, boolean(env, argv[7]));
    p.a.set_data_handle(a);
    p.b.set_data_handle(b);
    p.c.set_data_handle(c);
    std::unordered_map<int, memory> margs{{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.c}};
    if (hasBias) {
      p.bias.set_data_handle(bias);
      margs[DNNL_ARG_BIAS] = p.bias;
    }
    p.prim.execute(strm(), margs);
    strm().wait();
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- max pooling
// Geometry: [N, H, W, C, Ho, Wo, fh, fw, sh, sw, pt, pl]. Padded cells never win; ties go to
// the first cell in row-major window order, as in tfjs-backend-cpu.
struct PoolGeom {
  int64_t n, h, w, c, ho, wo, fh, fw, sh, sw, pt, pl;
  static PoolGeom from(const std::vector<int64_t>& g) {
    return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11]};
  }
};

// maxPool(x, y, geom)
napi_value MaxPool(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[3];
    args(env, info, 3, argv);
    PoolGeom g = PoolGeom::from(ints(env, argv[2], 12, "maxPool geometry"));
    const float* x = f32(env, argv[0], sz({g.n, g.h, g.w, g.c}), "maxPool x");
    float* y = f32(env, argv[1], sz({g.n, g.ho, g.wo, g.c}), "maxPool y");
    const float ninf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < g.n; b++) {
      for (int64_t i = 0; i < g.ho; i++) {
        for (int64_t j = 0; j < g.wo; j++) {
          float* out = y + ((b * g.ho + i) * g.wo + j) * g.c;
          for (int64_t ch = 0; ch < g.c; ch++) out[ch] = ninf;
          for (int64_t a = 0; a < g.fh; a++) {
            int64_t r = i * g.sh + a - g.pt;
            if (r < 0 || r >= g.h) continue;
            for (int64_t e = 0; e < g.fw; e++) {
              int64_t col = j * g.sw + e - g.pl;
              if (col < 0 || col >= g.w) continue;
              const float* in = x + ((b * g.h + r) * g.w + col) * g.c;
              for (int64_t ch = 0; ch < g.c; ch++) out[ch] = in[ch] > out[ch] ? in[ch] : out[ch];
            }
          }
        }
      }
    }
    return undefinedValue(env);
  });
}

// `v` where mask is all ones, +0 where it is 0 (bitwise, so that the loops below vectorise).
inline float masked(float v, int32_t mask) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= static_cast<uint32_t>(mask);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// maxPoolGrad(dy, x, dx, geom): each window's dy goes to its winner, tfjs-backend-cpu's rule: the
// first cell (row-major window order) whose value beats -infinity and every earlier cell (`pixel >
// maxValue`), none when no cell does (NaN / -inf / padding only). Summed where windows overlap, 0
// elsewhere. One pass over the windows, vectorised over channels: the window's maximum per channel,
// then its winner is the first cell equal to that maximum (the same cell), found while writing:
// - windows that do not overlap (stride >= size, e.g. 2x2 / 2): every cell of a window is written
//   once (0 + dy for the winner, as the cpu backend's sum from 0 gives, else +0), nothing else is
//   touched; cells that no window covers are zeroed first, only when there are some;
// - overlapping windows: each window adds its dy to its winner's sum, kept in double and rounded
//   once (the cpu backend's sum, bit for bit), in a per-thread image-sized scratch.
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    PoolGeom g = PoolGeom::from(ints(env, argv[3], 12, "maxPoolGrad geometry"));
    const float* dy = f32(env, argv[0], sz({g.n, g.ho, g.wo, g.c}), "maxPoolGrad dy");
    const float* x = f32(env, argv[1], sz({g.n, g.h, g.w, g.c}), "maxPoolGrad x");
    float* dx = f32(env, argv[2], sz({g.n, g.h, g.w, g.c}), "maxPoolGrad dx");
    const bool disjoint = g.sh >= g.fh && g.sw >= g.fw;
    // Does some input cell lie in no window? (Then the disjoint path zeroes the image first.)
    bool gaps = !disjoint;
    if (disjoint) {
      std::vector<char> rows(g.h, 0), cols(g.w, 0);
      for (int64_t i = 0; i < g.ho; i++)
        for (int64_t a = 0; a < g.fh; a++) {
          const int64_t r = i * g.sh - g.pt + a;
          if (r >= 0 && r < g.h) rows[r] = 1;
        }
      for (int64_t j = 0; j < g.wo; j++)
        for (int64_t e = 0; e < g.fw; e++) {
          const int64_t col = j * g.sw - g.pl + e;
          if (col >= 0 && col < g.w) cols[col] = 1;
        }
      gaps = std::find(rows.begin(), rows.end(), 0) != rows.end() || std::find(cols.begin(), cols.end(), 0) != cols.end();
    }
    const int64_t c = g.c;
    const int64_t imageSize = g.h * g.w * c;
    const float ninf = -std::numeric_limits<float>::infinity();
    // One image per thread: windows of an image may overlap, images never do.
#pragma omp parallel
    {
      std::vector<float> maxBuf(c);
      std::vector<int32_t> pendingBuf(c);
      std::vector<int64_t> cellBuf(g.fh * g.fw);
      float* __restrict mx = maxBuf.data();
      int32_t* __restrict pending = pendingBuf.data();  // all ones until the channel's winner is found
      int64_t* cells = cellBuf.data();                  // the window's cells inside the image (offsets)
      std::vector<double> sumBuf(disjoint ? 0 : imageSize);
      double* __restrict sums = sumBuf.data();
#pragma omp for
      for (int64_t b = 0; b < g.n; b++) {
        const float* img = x + b * imageSize;
        float* out = dx + b * imageSize;
        if (disjoint && gaps) std::memset(out, 0, imageSize * sizeof(float));
        if (!disjoint) std::fill(sumBuf.begin(), sumBuf.end(), 0.0);
        for (int64_t i = 0; i < g.ho; i++) {
          for (int64_t j = 0; j < g.wo; j++) {
            const int64_t r0 = i * g.sh - g.pt, c0 = j * g.sw - g.pl;
            int64_t ncells = 0;
            for (int64_t a = 0; a < g.fh; a++) {
              const int64_t r = r0 + a;
              if (r < 0 || r >= g.h) continue;
              for (int64_t e = 0; e < g.fw; e++) {
                const int64_t col = c0 + e;
                if (col >= 0 && col < g.w) cells[ncells++] = (r * g.w + col) * c;
              }
            }
            for (int64_t ch = 0; ch < c; ch++) mx[ch] = ninf;
            for (int64_t q = 0; q < ncells; q++) {
              const float* __restrict in = img + cells[q];
              for (int64_t ch = 0; ch < c; ch++) mx[ch] = in[ch] > mx[ch] ? in[ch] : mx[ch];
            }
            for (int64_t ch = 0; ch < c; ch++) pending[ch] = mx[ch] > ninf ? -1 : 0;
            const float* __restrict d = dy + ((b * g.ho + i) * g.wo + j) * c;
            for (int64_t q = 0; q < ncells; q++) {
              const float* __restrict in = img + cells[q];
              float* __restrict o = out + cells[q];
              if (disjoint) {
                for (int64_t ch = 0; ch < c; ch++) {
                  const int32_t eq = in[ch] == mx[ch] ? -1 : 0;
                  o[ch] = masked(0.f + d[ch], pending[ch] & eq);
                  pending[ch] &= ~eq;
                }
              } else {
                double* __restrict acc = sums + cells[q];
                for (int64_t ch = 0; ch < c; ch++) {
                  const int32_t eq = in[ch] == mx[ch] ? -1 : 0;
                  acc[ch] += static_cast<double>(masked(d[ch], pending[ch] & eq));
                  pending[ch] &= ~eq;
                }
              }
            }
          }
        }
        if (!disjoint) {
          for (int64_t k = 0; k < imageSize; k++) out[k] = static_cast<float>(sums[k]);
        }
      }
    }
    return undefinedValue(env);
  });
}

// avgPool(x, y, geom): the cpu backend's average pooling: each window's mean over its cells inside
// the input (padding not counted; a window with none gives NaN, 0 / 0), summed in double in the cpu
// backend's order (rows, then columns), so the result matches it bit for bit.
napi_value AvgPool(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[3];
    args(env, info, 3, argv);
    PoolGeom g = PoolGeom::from(ints(env, argv[2], 12, "avgPool geometry"));
    const float* x = f32(env, argv[0], sz({g.n, g.h, g.w, g.c}), "avgPool x");
    float* y = f32(env, argv[1], sz({g.n, g.ho, g.wo, g.c}), "avgPool y");
#pragma omp parallel
    {
      std::vector<double> acc(static_cast<size_t>(g.c));
#pragma omp for collapse(2)
      for (int64_t b = 0; b < g.n; b++) {
        for (int64_t i = 0; i < g.ho; i++) {
          const int64_t r0 = std::max<int64_t>(0, i * g.sh - g.pt);
          const int64_t r1 = std::min<int64_t>(g.h, i * g.sh - g.pt + g.fh);
          for (int64_t j = 0; j < g.wo; j++) {
            const int64_t c0 = std::max<int64_t>(0, j * g.sw - g.pl);
            const int64_t c1 = std::min<int64_t>(g.w, j * g.sw - g.pl + g.fw);
            std::fill(acc.begin(), acc.end(), 0.0);
            for (int64_t r = r0; r < r1; r++) {
              for (int64_t col = c0; col < c1; col++) {
                const float* p = x + ((b * g.h + r) * g.w + col) * g.c;
                for (int64_t ch = 0; ch < g.c; ch++) acc[ch] += p[ch];
              }
            }
            const double count = static_cast<double>(std::max<int64_t>(0, r1 - r0) * std::max<int64_t>(0, c1 - c0));
            float* out = y + ((b * g.ho + i) * g.wo + j) * g.c;
            for (int64_t ch = 0; ch < g.c; ch++) out[ch] = static_cast<float>(acc[ch] / count);
          }
        }
      }
    }
    return undefinedValue(env);
  });
}

// copyRuns(src, dst, [runs, run, srcStride, dstStride, srcStart, dstStart]): for each r < runs,
// dst[dstStart + r * dstStride, + run) = src[srcStart + r * srcStride, + run) (float32). Concat,
// split and one-axis slices are this (the ResNet shortcut's zero channels and their gradient).
napi_value CopyRuns(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[3];
    args(env, info, 3, argv);
    auto g = ints(env, argv[2], 6, "copyRuns geometry");
    const int64_t runs = g[0], run = g[1], srcStride = g[2], dstStride = g[3], srcStart = g[4], dstStart = g[5];
    if (runs < 0 || run < 0 || srcStride < 0 || dstStride < 0 || srcStart < 0 || dstStart < 0) throw JsError{"copyRuns: negative geometry"};
    size_t srcLen = 0, dstLen = 0;
    const float* src = f32Any(env, argv[0], &srcLen, "copyRuns src");
    float* dst = f32Any(env, argv[1], &dstLen, "copyRuns dst");
    if (runs == 0 || run == 0) return undefinedValue(env);
    if (static_cast<size_t>(srcStart + (runs - 1) * srcStride + run) > srcLen ||
        static_cast<size_t>(dstStart + (runs - 1) * dstStride + run) > dstLen) throw JsError{"copyRuns: runs out of bounds"};
#pragma omp parallel for if (runs * run > (1 << 16))
    for (int64_t r = 0; r < runs; r++) std::memcpy(dst + dstStart + r * dstStride, src + srcStart + r * srcStride, static_cast<size_t>(run) * sizeof(float));
    return undefinedValue(env);
  });
}

// avgPoolGrad(dy, dx, geom): dx[cell] = sum over windows covering the (unpadded) cell of dy / (fh * fw),
// the cpu backend's rule (the divisor is the full window, padded cells included).
napi_value AvgPoolGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[3];
    args(env, info, 3, argv);
    PoolGeom g = PoolGeom::from(ints(env, argv[2], 12, "avgPoolGrad geometry"));
    const float* dy = f32(env, argv[0], sz({g.n, g.ho, g.wo, g.c}), "avgPoolGrad dy");
    float* dx = f32(env, argv[1], sz({g.n, g.h, g.w, g.c}), "avgPoolGrad dx");
    std::memset(dx, 0, sz({g.n, g.h, g.w, g.c}) * sizeof(float));
    const float mult = 1.f / static_cast<float>(g.fh * g.fw);
#pragma omp parallel for
    for (int64_t b = 0; b < g.n; b++) {
      for (int64_t i = 0; i < g.ho; i++) {
        for (int64_t j = 0; j < g.wo; j++) {
          const float* d = dy + ((b * g.ho + i) * g.wo + j) * g.c;
          for (int64_t a = 0; a < g.fh; a++) {
            int64_t r = i * g.sh + a - g.pt;
            if (r < 0 || r >= g.h) continue;
            for (int64_t e = 0; e < g.fw; e++) {
              int64_t col = j * g.sw + e - g.pl;
              if (col < 0 || col >= g.w) continue;
              float* out = dx + ((b * g.h + r) * g.w + col) * g.c;
              for (int64_t ch = 0; ch < g.c; ch++) out[ch] += d[ch] * mult;
            }
          }
        }
      }
    }
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- local response normalisation
// tfjs's LRN over the channel axis (NHWC): y = x * (bias + alpha * sum_{|c'-c| <= r} x[c']^2)^-beta,
// and its gradient with the cpu backend's formula (double intermediate math, as in JS).
struct LrnArgs {
  int64_t positions, channels, radius;
  double bias, alpha, beta;
};

LrnArgs lrnArgs(napi_env env, napi_value geom, napi_value params) {
  auto g = ints(env, geom, 3, "lrn geometry");
  uint32_t n = 0;
  napi_get_array_length(env, params, &n);
  if (n != 3) throw JsError{"lrn: expected [bias, alpha, beta]"};
  double p[3];
  for (uint32_t i = 0; i < 3; i++) {
    napi_value e;
    napi_get_element(env, params, i, &e);
    napi_get_value_double(env, e, &p[i]);
  }
  return {g[0], g[1], g[2], p[0], p[1], p[2]};
}

// lrn(x, y, [positions, channels, radius], [bias, alpha, beta])
napi_value Lrn(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    LrnArgs a = lrnArgs(env, argv[2], argv[3]);
    const float* x = f32(env, argv[0], sz({a.positions, a.channels}), "lrn x");
    float* y = f32(env, argv[1], sz({a.positions, a.channels}), "lrn y");
#pragma omp parallel for
    for (int64_t p = 0; p < a.positions; p++) {
      const float* xp = x + p * a.channels;
      for (int64_t c = 0; c < a.channels; c++) {
        double sum = 0;
        for (int64_t k = std::max<int64_t>(0, c - a.radius); k <= std::min(c + a.radius, a.channels - 1); k++) {
          sum += double(xp[k]) * xp[k];
        }
        y[p * a.channels + c] = static_cast<float>(xp[c] * std::pow(a.bias + a.alpha * sum, -a.beta));
      }
    }
    return undefinedValue(env);
  });
}

// lrnGrad(x, y, dy, dx, [positions, channels, radius], [bias, alpha, beta])
napi_value LrnGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[6];
    args(env, info, 6, argv);
    LrnArgs a = lrnArgs(env, argv[4], argv[5]);
    size_t n = sz({a.positions, a.channels});
    const float* x = f32(env, argv[0], n, "lrnGrad x");
    const float* y = f32(env, argv[1], n, "lrnGrad y");
    const float* dy = f32(env, argv[2], n, "lrnGrad dy");
    float* dx = f32(env, argv[3], n, "lrnGrad dx");
    std::memset(dx, 0, n * sizeof(float));
#pragma omp parallel for
    for (int64_t p = 0; p < a.positions; p++) {
      const int64_t o = p * a.channels;
      for (int64_t d = 0; d < a.channels; d++) {
        const int64_t begin = std::max<int64_t>(0, d - a.radius), end = std::min(a.channels, d + a.radius + 1);
        double norm = 0;
        for (int64_t k = begin; k < end; k++) norm += double(x[o + k]) * x[o + k];
        norm = a.alpha * norm + a.bias;
        for (int64_t k = begin; k < end; k++) {
          double g = -2 * a.alpha * a.beta * x[o + k] * y[o + d] / norm;
          if (k == d) g += std::pow(norm, -a.beta);
          dx[o + k] += static_cast<float>(g * dy[o + d]);
        }
      }
    }
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- elementwise and reductions
// The pieces of a training step that are memory bound (Adam's updates, bias gradients, relu):
// the cpu backend's JS loops index every element through its broadcast shape.
enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kReluGrad = 4 };

template <typename F>
void binaryLoop(const float* a, const float* b, float* out, int64_t n, int64_t am, int64_t bm, F f) {
  if (am == n && bm == n) {
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) out[i] = f(a[i], b[i]);
  } else if (am == n && bm == 1) {
    const float bv = b[0];
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) out[i] = f(a[i], bv);
  } else if (am == 1 && bm == n) {
    const float av = a[0];
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) out[i] = f(av, b[i]);
  } else {
    // One operand repeats every `m` elements (a trailing-dimension broadcast, e.g. a bias).
    const int64_t m = am == n ? bm : am;
    const int64_t blocks = n / m;
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t o = 0; o < blocks; o++) {
      const float* ap = am == n ? a + o * m : a;
      const float* bp = bm == n ? b + o * m : b;
      float* op = out + o * m;
      for (int64_t j = 0; j < m; j++) op[j] = f(ap[j], bp[j]);
    }
  }
}

// binary(op, a, b, out, [n, aPeriod, bPeriod]): out[i] = a[i % aPeriod] op b[i % bPeriod] (op 4: a * step(b)), where each
// period is n, 1, or (for one of them) a divisor of n.
napi_value Binary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[5];
    args(env, info, 5, argv);
    int32_t op = 0;
    napi_get_value_int32(env, argv[0], &op);
    auto g = ints(env, argv[4], 3, "binary geometry");
    int64_t n = g[0], am = g[1], bm = g[2];
    if (am < 1 || bm < 1 || n % am != 0 || n % bm != 0 || (am != n && am != 1 && bm != n) ||
        (bm != n && bm != 1 && am != n)) {
      throw JsError{"binary: unsupported broadcast"};
    }
    const float* a = f32(env, argv[1], am, "binary a");
    const float* b = f32(env, argv[2], bm, "binary b");
    float* out = f32(env, argv[3], n, "binary out");
    switch (op) {
      case kAdd: binaryLoop(a, b, out, n, am, bm, [](float x, float y) { return x + y; }); break;
      case kSub: binaryLoop(a, b, out, n, am, bm, [](float x, float y) { return x - y; }); break;
      case kMul: binaryLoop(a, b, out, n, am, bm, [](float x, float y) { return x * y; }); break;
      case kDiv: binaryLoop(a, b, out, n, am, bm, [](float x, float y) { return x / y; }); break;
      // Relu's gradient dy * step(x), tfjs's composite in one pass (NaN x gives NaN, as Step does).
      case kReluGrad:
        // (Written without std::isnan's branch so that GCC vectorises it.)
        binaryLoop(a, b, out, n, am, bm, [](float d, float x) {
          const float s = x > 0.f ? 1.f : 0.f;
          return d * (x != x ? x : s);
        });
        break;
      default: throw JsError{"binary: unknown op " + std::to_string(op)};
    }
    return undefinedValue(env);
  });
}

// adamUpdate(value, m, v, g, newValue, newM, newV, [beta1, 1 - beta1, beta2, 1 - beta2, epsilon, -lr,
// 1 - beta1^t, 1 - beta2^t]): one Adam step of one variable, tfjs's AdamOptimizer formula with the
// same float32 operations in the same order (each rounded to float32, as its separate kernels do):
//   m' = m * beta1 + g * (1 - beta1)            v' = v * beta2 + (g * g) * (1 - beta2)
//   value' = ((m' / (1 - beta1^t)) / (sqrt(v' / (1 - beta2^t)) + epsilon)) * -lr + value
// The scalars arrive already rounded to float32 (as tfjs's scalar tensors hold them). Outputs are
// separate arrays (never the inputs). Built with -ffp-contract=off: no fused multiply-adds.
napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[8];
    args(env, info, 8, argv);
    napi_typedarray_type type;
    size_t n = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, argv[0], &type, &n, &data, nullptr, nullptr) != napi_ok) {
      throw JsError{"adamUpdate value: expected a Float32Array"};
    }
    const float* __restrict value = f32(env, argv[0], n, "adamUpdate value");
    const float* __restrict m = f32(env, argv[1], n, "adamUpdate m");
    const float* __restrict v = f32(env, argv[2], n, "adamUpdate v");
    const float* __restrict g = f32(env, argv[3], n, "adamUpdate gradient");
    float* __restrict outValue = f32(env, argv[4], n, "adamUpdate new value");
    float* __restrict outM = f32(env, argv[5], n, "adamUpdate new m");
    float* __restrict outV = f32(env, argv[6], n, "adamUpdate new v");
    uint32_t count = 0;
    bool isArray = false;
    napi_is_array(env, argv[7], &isArray);
    if (!isArray || napi_get_array_length(env, argv[7], &count) != napi_ok || count != 8) {
      throw JsError{"adamUpdate: expected 8 scalars"};
    }
    float p[8];
    for (uint32_t i = 0; i < 8; i++) {
      napi_value e;
      double d = 0;
      napi_get_element(env, argv[7], i, &e);
      if (napi_get_value_double(env, e, &d) != napi_ok) throw JsError{"adamUpdate: scalars must be numbers"};
      p[i] = static_cast<float>(d);
    }
    const float beta1 = p[0], oneMinusBeta1 = p[1], beta2 = p[2], oneMinusBeta2 = p[3], epsilon = p[4], negLr = p[5],
                correction1 = p[6], correction2 = p[7];
    const int64_t len = static_cast<int64_t>(n);
#pragma omp parallel for if (len > (1 << 16))
    for (int64_t i = 0; i < len; i++) {
      const float gi = g[i];
      const float mi = m[i] * beta1 + gi * oneMinusBeta1;
      const float vi = v[i] * beta2 + (gi * gi) * oneMinusBeta2;
      const float mHat = mi / correction1;
      const float vHat = vi / correction2;
      outM[i] = mi;
      outV[i] = vi;
      outValue[i] = (mHat / (std::sqrt(vHat) + epsilon)) * negLr + value[i];
    }
    return undefinedValue(env);
  });
}

enum UnaryOp { kRelu = 0, kSqrt = 1, kSquare = 2, kStep = 3, kNeg = 4 };

template <typename F>
void unaryLoop(const float* x, float* out, int64_t n, F f) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) out[i] = f(x[i]);
}

// unary(op, x, out, alpha): alpha is Step's value for x <= 0 (NaN stays NaN, as in tfjs).
napi_value Unary(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    int32_t op = 0;
    napi_get_value_int32(env, argv[0], &op);
    napi_typedarray_type type;
    size_t n = 0;
    void* data = nullptr;
    napi_get_typedarray_info(env, argv[1], &type, &n, &data, nullptr, nullptr);
    const float* x = f32(env, argv[1], n, "unary x");
    float* out = f32(env, argv[2], n, "unary out");
    double alphaD = 0;
    napi_get_value_double(env, argv[3], &alphaD);
    const float alpha = static_cast<float>(alphaD);
    const int64_t len = static_cast<int64_t>(n);
    switch (op) {
      case kRelu: unaryLoop(x, out, len, [](float v) { return v < 0.f ? 0.f : v; }); break;
      case kSqrt: unaryLoop(x, out, len, [](float v) { return std::sqrt(v); }); break;
      case kSquare: unaryLoop(x, out, len, [](float v) { return v * v; }); break;
      case kStep: unaryLoop(x, out, len, [alpha](float v) { return std::isnan(v) ? v : (v > 0.f ? 1.f : alpha); }); break;
      case kNeg: unaryLoop(x, out, len, [](float v) { return -v; }); break;
      default: throw JsError{"unary: unknown op " + std::to_string(op)};
    }
    return undefinedValue(env);
  });
}

// sum(x, out, [outer, reduce, inner], scale): out[o, i] = scale * sum_r x[o, r, i], accumulated in
// double (the cpu backend sums in JS numbers); scale 1 / reduce gives the mean.
napi_value Sum(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[4];
    args(env, info, 4, argv);
    auto g = ints(env, argv[2], 3, "sum geometry");
    double scale = 1;
    napi_get_value_double(env, argv[3], &scale);
    int64_t outer = g[0], reduce = g[1], inner = g[2];
    const float* x = f32(env, argv[0], sz({outer, reduce, inner}), "sum x");
    float* out = f32(env, argv[1], sz({outer, inner}), "sum out");
    if (inner == 1) {
#pragma omp parallel for if (outer * reduce > (1 << 16))
      for (int64_t o = 0; o < outer; o++) {
        double acc = 0;
        const float* p = x + o * reduce;
        for (int64_t r = 0; r < reduce; r++) acc += p[r];
        out[o] = static_cast<float>(acc * scale);
      }
    } else {
      for (int64_t o = 0; o < outer; o++) {
        // Split the reduced rows among threads, each with its own partial sums.
        int nt = (reduce * inner > (1 << 16)) ? omp_get_max_threads() : 1;
        std::vector<double> partial(static_cast<size_t>(nt) * inner, 0.0);
#pragma omp parallel num_threads(nt)
        {
          double* acc = partial.data() + static_cast<size_t>(omp_get_thread_num()) * inner;
#pragma omp for
          for (int64_t r = 0; r < reduce; r++) {
            const float* p = x + (o * reduce + r) * inner;
            for (int64_t i = 0; i < inner; i++) acc[i] += p[i];
          }
        }
        for (int64_t i = 0; i < inner; i++) {
          double s = 0;
          for (int t = 0; t < nt; t++) s += partial[static_cast<size_t>(t) * inner + i];
          out[o * inner + i] = static_cast<float>(s * scale);
        }
      }
    }
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- batch normalisation (training)
// Over the last axis of a row-major [m, c] view (NHWC: m = N*H*W). Per-channel sums in double, split
// among threads by rows (each thread its own partial sums), then combined in a fixed order.
template <typename Body>
void rowSums(int64_t m, int64_t c, int nsums, std::vector<double>& out, Body body) {
  const int nt = (m * c > (1 << 16)) ? std::max(1, omp_get_max_threads()) : 1;
  std::vector<double> partial(static_cast<size_t>(nt) * nsums * c, 0.0);
#pragma omp parallel num_threads(nt)
  {
    double* acc = partial.data() + static_cast<size_t>(omp_get_thread_num()) * nsums * c;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; r++) body(r, acc);
  }
  out.assign(static_cast<size_t>(nsums) * c, 0.0);
  for (int t = 0; t < nt; t++) {
    const double* p = partial.data() + static_cast<size_t>(t) * nsums * c;
    for (int64_t i = 0; i < nsums * c; i++) out[i] += p[i];
  }
}

// batchNormTrain(x, gamma, beta, y, mean, variance, [m, c], epsilon): the batch's mean and biased
// variance per channel, and y = (x - mean) / sqrt(variance + epsilon) * gamma + beta.
// One pass for the statistics, shifted by the first row (no cancellation unless |mean| >> std).
napi_value BatchNormTrain(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[8];
    args(env, info, 8, argv);
    const Matrix g = matrixGeom(env, argv[6], "batchNormTrain");
    const int64_t m = g.rows, c = g.cols;
    double eps = 0;
    napi_get_value_double(env, argv[7], &eps);
    const float* x = f32(env, argv[0], sz({m, c}), "batchNormTrain x");
    const float* gamma = f32(env, argv[1], c, "batchNormTrain gamma");
    const float* beta = f32(env, argv[2], c, "batchNormTrain beta");
    float* y = f32(env, argv[3], sz({m, c}), "batchNormTrain y");
    float* mean = f32(env, argv[4], c, "batchNormTrain mean");
    float* var = f32(env, argv[5], c, "batchNormTrain variance");
    std::vector<double> shiftV(x, x + c);
    const double* shift = shiftV.data();
    std::vector<double> sums;
    rowSums(m, c, 2, sums, [&](int64_t r, double* acc) {
      const float* xr = x + r * c;
      double* s1 = acc;
      double* s2 = acc + c;
      for (int64_t j = 0; j < c; j++) {
        const double d = double(xr[j]) - shift[j];
        s1[j] += d;
        s2[j] += d * d;
      }
    });
    std::vector<float> scale(c), offset(c);
    for (int64_t j = 0; j < c; j++) {
      const double md = sums[j] / double(m);
      const double v = std::max(0.0, sums[c + j] / double(m) - md * md);
      const double mu = shift[j] + md;
      const double s = double(gamma[j]) / std::sqrt(v + eps);
      mean[j] = static_cast<float>(mu);
      var[j] = static_cast<float>(v);
      scale[j] = static_cast<float>(s);
      offset[j] = static_cast<float>(double(beta[j]) - mu * s);
    }
    const float* sc = scale.data();
    const float* of = offset.data();
#pragma omp parallel for if (m * c > (1 << 16))
    for (int64_t r = 0; r < m; r++) {
      const float* xr = x + r * c;
      float* yr = y + r * c;
      for (int64_t j = 0; j < c; j++) yr[j] = xr[j] * sc[j] + of[j];
    }
    return undefinedValue(env);
  });
}

// batchNormTrainGrad(dy, x, gamma, mean, variance, dmean, dvariance, dx, dgamma, dbeta, [m, c], epsilon):
// the gradient of batchNormTrain's outputs (y, mean, variance) with respect to x, gamma and beta, with
// the batch statistics depending on x. With s = 1 / sqrt(variance + epsilon) and xc = x - mean:
//   dbeta = sum dy, dgamma = s * sum dy * xc,
//   dx = gamma s dy - gamma s (dbeta + s xc dgamma) / m + dmean / m + 2 dvariance xc / m.
napi_value BatchNormTrainGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[12];
    args(env, info, 12, argv);
    const Matrix g = matrixGeom(env, argv[10], "batchNormTrainGrad");
    const int64_t m = g.rows, c = g.cols;
    double eps = 0;
    napi_get_value_double(env, argv[11], &eps);
    const float* dy = f32(env, argv[0], sz({m, c}), "batchNormTrainGrad dy");
    const float* x = f32(env, argv[1], sz({m, c}), "batchNormTrainGrad x");
    const float* gamma = f32(env, argv[2], c, "batchNormTrainGrad gamma");
    const float* meanF = f32(env, argv[3], c, "batchNormTrainGrad mean");
    const float* var = f32(env, argv[4], c, "batchNormTrainGrad variance");
    const float* dmean = isNullish(env, argv[5]) ? nullptr : f32(env, argv[5], c, "batchNormTrainGrad dmean");
    const float* dvar = isNullish(env, argv[6]) ? nullptr : f32(env, argv[6], c, "batchNormTrainGrad dvariance");
    float* dx = f32(env, argv[7], sz({m, c}), "batchNormTrainGrad dx");
    float* dgamma = f32(env, argv[8], c, "batchNormTrainGrad dgamma");
    float* dbeta = f32(env, argv[9], c, "batchNormTrainGrad dbeta");
    std::vector<double> muV(meanF, meanF + c);
    const double* mu = muV.data();
    std::vector<double> sums;
    rowSums(m, c, 2, sums, [&](int64_t r, double* acc) {
      const float* xr = x + r * c;
      const float* dr = dy + r * c;
      double* s1 = acc;
      double* s2 = acc + c;
      for (int64_t j = 0; j < c; j++) {
        const double d = dr[j];
        s1[j] += d;
        s2[j] += d * (double(xr[j]) - mu[j]);
      }
    });
    // dx = a dy + b xc + k per channel.
    std::vector<float> a(c), b(c), k(c);
    const double inv = 1.0 / double(m);
    for (int64_t j = 0; j < c; j++) {
      const double s = 1.0 / std::sqrt(double(var[j]) + eps);
      const double db = sums[j], dg = sums[c + j] * s;
      dbeta[j] = static_cast<float>(db);
      dgamma[j] = static_cast<float>(dg);
      const double gs = double(gamma[j]) * s;
      a[j] = static_cast<float>(gs);
      b[j] = static_cast<float>(-gs * s * dg * inv + (dvar ? 2.0 * dvar[j] * inv : 0.0));
      k[j] = static_cast<float>(-gs * db * inv + (dmean ? dmean[j] * inv : 0.0));
    }
    const float *ap = a.data(), *bp = b.data(), *kp = k.data();
#pragma omp parallel for if (m * c > (1 << 16))
    for (int64_t r = 0; r < m; r++) {
      const float* xr = x + r * c;
      const float* dr = dy + r * c;
      float* out = dx + r * c;
      for (int64_t j = 0; j < c; j++) out[j] = ap[j] * dr[j] + bp[j] * (xr[j] - meanF[j]) + kp[j];
    }
    return undefinedValue(env);
  });
}

// ---------------------------------------------------------------- misc
// softmaxCrossEntropy(logits, labels, loss, probs, [rows, classes]): per row, loss = logsumexp(z)
// - sum(labels * z) (labels: one-hot or any weights) and probs = softmax(z); sums in double.
napi_value SoftmaxCrossEntropy(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[5];
    args(env, info, 5, argv);
    const Matrix g = matrixGeom(env, argv[4], "softmaxCrossEntropy");
    const int64_t n = g.rows, c = g.cols;
    const float* z = f32(env, argv[0], sz({n, c}), "softmaxCrossEntropy logits");
    const float* y = f32(env, argv[1], sz({n, c}), "softmaxCrossEntropy labels");
    float* loss = f32(env, argv[2], n, "softmaxCrossEntropy loss");
    float* p = f32(env, argv[3], sz({n, c}), "softmaxCrossEntropy probs");
    std::vector<double> e(c);  // one row's exp(z - max), for the sum and then the probabilities
    for (int64_t r = 0; r < n; r++) {
      const float* zr = z + r * c;
      const float* yr = y + r * c;
      float* pr = p + r * c;
      double top = zr[0];
      for (int64_t j = 1; j < c; j++) top = std::max(top, double(zr[j]));
      double total = 0, dot = 0;
      for (int64_t j = 0; j < c; j++) {
        total += e[j] = std::exp(double(zr[j]) - top);
        dot += double(yr[j]) * double(zr[j]);
      }
      for (int64_t j = 0; j < c; j++) pr[j] = static_cast<float>(e[j] / total);
      loss[r] = static_cast<float>(top + std::log(total) - dot);
    }
    return undefinedValue(env);
  });
}

// softmaxCrossEntropyGrad(dy, probs, labels, dlogits, [rows, classes]): the gradient of the per-row
// loss above with respect to the logits, dy[r] * (probs - labels).
napi_value SoftmaxCrossEntropyGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[5];
    args(env, info, 5, argv);
    const Matrix g = matrixGeom(env, argv[4], "softmaxCrossEntropyGrad");
    const int64_t n = g.rows, c = g.cols;
    const float* dy = f32(env, argv[0], n, "softmaxCrossEntropyGrad dy");
    const float* p = f32(env, argv[1], sz({n, c}), "softmaxCrossEntropyGrad probs");
    const float* y = f32(env, argv[2], sz({n, c}), "softmaxCrossEntropyGrad labels");
    float* dz = f32(env, argv[3], sz({n, c}), "softmaxCrossEntropyGrad dlogits");
    for (int64_t r = 0; r < n; r++) {
      const float* pr = p + r * c;
      const float* yr = y + r * c;
      for (int64_t j = 0; j < c; j++) dz[r * c + j] = static_cast<float>(double(dy[r]) * (double(pr[j]) - double(yr[j])));
    }
    return undefinedValue(env);
  });
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[1];
    args(env, info, 1, argv);
    int32_t n = 0;
    napi_get_value_int32(env, argv[0], &n);
    if (n < 1) throw JsError{"setThreads: expected an integer >= 1"};
    omp_set_num_threads(n);
    return undefinedValue(env);
  });
}

napi_value GetThreads(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, omp_get_max_threads(), &v);
  return v;
}

napi_value Version(napi_env env, napi_callback_info) {
  const dnnl_version_t* v = dnnl_version();
  std::string s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  napi_value out;
  napi_create_string_utf8(env, s.c_str(), s.size(), &out);
  return out;
}

// Names of the implementations oneDNN picked for a convolution geometry (diagnostics).
napi_value ConvImpl(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value argv[1];
    args(env, info, 1, argv);
    ConvGeom g = ConvGeom::from(ints(env, argv[0], 17, "convImpl geometry"));
    auto fwd = g.forward(false, false);
    convolution_backward_data::desc dd(algorithm::convolution_direct, g.src(), g.anyWeights(), g.dst(), g.strides(),
                                       g.dilates(), g.padL(), g.padR());
    convolution_backward_weights::desc wd(algorithm::convolution_direct, g.src(), g.anyWeights(), g.dst(),
                                          g.strides(), g.dilates(), g.padL(), g.padR());
    std::string s = std::string("fwd ") + fwd.impl_info_str() +
                    "; bwd_d " + convolution_backward_data::primitive_desc(dd, eng(), fwd).impl_info_str() +
                    "; bwd_w " + convolution_backward_weights::primitive_desc(wd, eng(), fwd).impl_info_str();
    napi_value out;
    napi_create_string_utf8(env, s.c_str(), s.size(), &out);
    return out;
  });
}

napi_value ClearCache(napi_env env, napi_callback_info) {
  convFwdCache.clear();
  convBwdDataCache.clear();
  convBwdWeightsCache.clear();
  matMulCache.clear();
  return undefinedValue(env);
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropInput", nullptr, Conv2dBackpropInput, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropFilter", nullptr, Conv2dBackpropFilter, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matMul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool", nullptr, MaxPool, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGrad", nullptr, MaxPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPool", nullptr, AvgPool, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPoolGrad", nullptr, AvgPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyRuns", nullptr, CopyRuns, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"lrn", nullptr, Lrn, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"lrnGrad", nullptr, LrnGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sum", nullptr, Sum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTrain", nullptr, BatchNormTrain, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTrainGrad", nullptr, BatchNormTrainGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxCrossEntropy", nullptr, SoftmaxCrossEntropy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxCrossEntropyGrad", nullptr, SoftmaxCrossEntropyGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, AdamUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"getThreads", nullptr, GetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"version", nullptr, Version, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convImpl", nullptr, ConvImpl, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clearCache", nullptr, ClearCache, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
