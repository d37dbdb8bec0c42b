// Full-precision baseline GEMV / GEMM generators (families "f32" and "f16"): the llama.cpp-style
// reference point of every speedup table. y(n, t) = sum_k f32(W(k, n)) * x(k, t), weights f32 or
// f16 (converted to f32 in registers: vcvtph2ps on F16C/AVX-512), f32 accumulation.
//
// The reduction is vectorized along K: each accumulator holds `vl` partial sums of one (row,
// token) pair and is reduced horizontally once at the end, so the weight stream is read with
// unit stride (the roofline of a GEMV is its weight bandwidth).
#include "Halide.h"

namespace {

using namespace Halide;

template <typename WT>
class FpMatmul : public Generator<FpMatmul<WT>> {
 public:
  template <typename T>
  using GP = GeneratorParam<T>;
  template <typename T>
  using In = GeneratorInput<T>;
  template <typename T>
  using Out = GeneratorOutput<T>;
  GP<int> rows{"rows", 4};        // output rows per register block
  GP<int> tokens{"tokens", 1};    // tokens per register block
  GP<int> kunroll{"kunroll", 2};  // unroll of the K-vector loop
  GP<int> vbits{"vbits", 512};    // f32 vector width in bits
  GP<int> grain{"grain", 8};      // register blocks per parallel task (0 = one per row block)

  In<Buffer<WT, 2>> w{"w"};      // [K, N]
  In<Buffer<float, 2>> x{"x"};   // [K, T]
  Out<Buffer<float, 2>> y{"y"};  // [N, T]

  void generate() {
    /* THE ALGORITHM */
    const int vl = vbits / 32;
    Var l{"l"}, n{"n"}, t{"t"};
    Expr K = w.dim(0).extent();
    Expr kv = K / vl;  // whole vectors
    RDom r(0, kv, "r");
    Func acc{"acc"};
    acc(l, n, t) = 0.0f;
    acc(l, n, t) += cast<float>(w(r * vl + l, n)) * x(r * vl + l, t);
    RDom lr(0, vl, "lr");
    RDom tail(0, K - kv * vl, "tail");  // K % vl leftover columns
    Func head{"head"};
    head(n, t) = sum(acc(lr, n, t));
    y(n, t) = head(n, t) + sum(cast<float>(w(kv * vl + tail, n)) * x(kv * vl + tail, t));

    /* THE SCHEDULE */
    w.dim(0).set_min(0).set_stride(1);
    x.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_min(0);
    y.dim(1).set_min(0);
    Var no{"no"}, ni{"ni"}, to{"to"}, ti{"ti"}, par{"par"};
    RVar ro{"ro"}, ri{"ri"};
    const int R = rows, T = tokens;
    Expr big = y.dim(0).extent() >= R && y.dim(1).extent() >= T;
    auto block = [&](Stage s, int rb, int tb) {
      s.split(n, no, ni, rb, TailStrategy::ShiftInwards)
          .split(t, to, ti, tb, TailStrategy::ShiftInwards)
          .reorder(ni, ti, to, no)
          .unroll(ni)
          .unroll(ti);
      if (grain > 0) {
        s.split(no, par, no, grain, TailStrategy::GuardWithIf).parallel(par);
      } else {
        s.parallel(no);
      }
    };
    block(y.specialize(big), R, T);
    block(y, 1, 1);
    head.compute_at(y, to).unroll(n).unroll(t);
    acc.compute_at(y, to).vectorize(l).unroll(n).unroll(t);
    Stage u = acc.update();
    if (kunroll > 1) {
      u.split(r, ro, ri, kunroll, TailStrategy::GuardWithIf).reorder(l, t, n, ri, ro).unroll(ri);
    } else {
      u.reorder(l, t, n, r);
    }
    u.vectorize(l).unroll(t).unroll(n);
  }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(FpMatmul<float>, f32_gemv)
HALIDE_REGISTER_GENERATOR(FpMatmul<float>, f32_gemm)
HALIDE_REGISTER_GENERATOR(FpMatmul<Halide::float16_t>, f16_gemv)
HALIDE_REGISTER_GENERATOR(FpMatmul<Halide::float16_t>, f16_gemm)

// Referenced by the JIT path (kernels/variant.cc) so this file's registrations are linked into
// the runtime library.
namespace tritune {
void link_fp_generators() {}
}  // namespace tritune
