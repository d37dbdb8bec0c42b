// I2_S ternary GEMV / GEMM generators (family "i2s").
//
// Computes raw(n, t) = sum_k x_q(k, t) * w(n, k) exactly in int32, the way bitnet.cpp's MAD
// kernel does: codes c = w + 1 in {0,1,2} are u8, activations s8, so sum_k c*x is a u8 x s8 dot
// product (VNNI vpdpbusd: 4 products per int32 lane) and sum_k w*x = sum_k c*x - sum_k x.
//
// Weights arrive in the r16k16 kernel layout (kernels/i2s.h): 64-byte tiles of 16 rows x 16
// columns; decoding group g of a tile (one shift + one mask) yields 16 rows x 4 consecutive
// columns, which is one vpdpbusd operand. Accumulators therefore hold 16 output rows in 16 int32
// lanes: no horizontal reduction at the end, and the activation operand is a 4-byte broadcast.
// K is split into `parts` (w's dimension 2, any extent at run time): part s holds tiles
// [s * kq, (s + 1) * kq) of every row tile, row tile after row tile. A GEMV walks the parts
// side by side (for each chunk of tiles, that chunk of every part), so a core reads `parts`
// long streams at once instead of one; integer sums do not depend on the order.
#include "Halide.h"

namespace {

using namespace Halide;

enum class Accum { Vnni, Pmaddwd, Pmaddubsw };
enum class Decode { Shift, Mask, Split };

template <bool kGemm>
class I2SMatmul : public Generator<I2SMatmul<kGemm>> {
 public:
  template <typename T>
  using GP = GeneratorParam<T>;
  template <typename T>
  using In = GeneratorInput<T>;
  template <typename T>
  using Out = GeneratorOutput<T>;
  // ---- schedule knobs (the search space is declared in i2s_space.cc) -------------------------
  // 16-row tiles per register block. Accumulators = rows * (16 lanes / vector lanes) * tokens;
  // with 32 zmm registers, rows * tokens <= ~24 keeps decode temporaries in registers too.
  GP<int> rows{"rows", kGemm ? 2 : 4};
  // Tokens per register block (GEMM): each decoded weight vector is reused this many times.
  GP<int> tokens{"tokens", kGemm ? 8 : 1};
  // Unroll of the K loop (in 16-column tiles).
  GP<int> kunroll{"kunroll", 1};
  // Vector width in bits of the int32 accumulators (512 = 16 lanes = one 16-row tile per zmm).
  GP<int> vbits{"vbits", 512};
  // Register blocks per parallel task (parallel grain); 0 = one task per thread (static split).
  GP<int> grain{"grain", kGemm ? 1 : 4};
  // K block (columns) for GEMM: the reduction is split so a token block's activations stay in
  // L1 while a row block's weights stay in L2. 0 = whole K.
  GP<int> kblock{"kblock", 0};
  // Accumulation strategy: vnni = 4-way u8 x s8 dot (vpdpbusd on AVX512-VNNI; elsewhere
  // Halide has no 4-way pattern and falls back to widening multiplies); pmaddwd = widen to
  // i16, 2-way i16 dot products; pmaddubsw = 2-way u8 x s8 dot products into i16 (pmaddubsw,
  // the AVX2/SSSE3 instruction), summed in i16 over the 4 groups of kunroll tiles, widened to
  // int32 once per kunroll tiles (pmaddwd with ones). Exact: a pair is at most 2*2*127 = 508
  // in magnitude and 16 tiles * 4 groups of them stay below 32767 (shift decode only).
  GP<Accum> accum{
      "accum",
      Accum::Vnni,
      {{"vnni", Accum::Vnni}, {"pmaddwd", Accum::Pmaddwd}, {"pmaddubsw", Accum::Pmaddubsw}}};
  // Software prefetch distance in 16-column tiles along K (0 = off). Each 16-row tile's weights
  // are a stream of only K/4 bytes (10 KiB at K = 2560), too short for the hardware prefetcher
  // to ramp up on before it ends, so a GEMV on cold weights stalls at every block start.
  GP<int> prefetch{"prefetch", 0};
  // How a 2-bit group g of a tile becomes a u8 dot operand. shift: (w >> 2g) & 3, one shift and
  // one mask per group. mask: w & (3 << 2g) = code * 4^g, one op per group, with a separate
  // accumulator per group scaled back by an exact arithmetic shift at the end (GEMV only: GEMM
  // amortizes the decode over its token block and cannot afford 4x the accumulators). Exact
  // while |sum| fits int32: K <= 2^19 (the space's constraint). split (accum=pmaddubsw, GEMV):
  // one shift per byte serves two groups: with v = w and v = w >> 4, v & 3 is group 0 or 2 and
  // v & 12 = 4 * code is group 1 or 3; the two scales have their own i16 sums, the 4 * code
  // one scaled back by an exact >> 2 when a chunk of kunroll tiles is widened. 5 ops per 32
  // bytes instead of 7, and 1 shift instead of 3 (shifts have half the ports of logic ops on
  // Zen 3). Exact: a 4 * code pair is in [-2048, 2032], so 2 groups x 8 tiles fit int16 and
  // the widening (pmaddwd + add) comes once per 8 tiles.
  GP<Decode> decode{"decode",
                    Decode::Shift,
                    {{"shift", Decode::Shift}, {"mask", Decode::Mask}, {"split", Decode::Split}}};

  In<Buffer<uint8_t, 4>> w{"w"};        // [64, kq, parts, n16]: tile s * kq + kc of a row
  In<Buffer<int8_t, 2>> x{"x"};         // [k16*16, T]
  In<Buffer<int32_t, 1>> xsum{"xsum"};  // [T]
  Out<Buffer<int32_t, 2>> y{"y"};       // [n16*16, T]

  Var n{"n"}, t{"t"}, lane{"lane"}, rt{"rt"}, b{"b"}, g{"g"}, kc{"kc"}, s{"s"};
  Func code{"code"}, acc{"acc"};

  void generate() {
    /* THE ALGORITHM */
    Expr kq = w.dim(1).extent(), parts = w.dim(2).extent();
    if (!kGemm && decode == Decode::Mask) {
      generate_masked(kq, parts);
      return;
    }
    if (accum == Accum::Pmaddubsw) {
      generate_i16_pairs(kq, parts);
      return;
    }
    // Decoded codes, u8 in {0,1,2}. Kept as its own Func so the u8 type survives into the dot
    // product (inlined, Halide would prove the value < 128 and narrow it to s8, losing vpdpbusd).
    code(b, g, kc, s, rt) = shift_decode(w(b, kc, s, rt), g);
    // r.x: column within a group of 4, r.y: group, r.z: tile within a part, r[3]: part
    RDom r(0, 4, 0, 4, 0, kq, 0, parts, "r");
    Expr c = code(4 * lane + r.x, r.y, r.z, r[3], rt);
    Expr a = x(r.x + 4 * r.y + 16 * (r[3] * kq + r.z), t);
    acc(lane, rt, t) = 0;
    if (accum == Accum::Vnni) {
      acc(lane, rt, t) += cast<int32_t>(c) * cast<int32_t>(a);
    } else {
      acc(lane, rt, t) += cast<int32_t>(cast<int16_t>(c) * cast<int16_t>(a));
    }
    y(n, t) = acc(n % 16, n / 16, t) - xsum(t);

    /* THE SCHEDULE */
    const int vl = vbits / 32;  // int32 lanes per vector
    layout_contract();

    Var nto{"nto"}, to{"to"}, ti{"ti"};
    RVar rzo{"rzo"}, rzi{"rzi"}, rzb{"rzb"}, rzk{"rzk"};
    const int T = tokens;
    block_stages(rows, T, nto);

    const bool kblocked = kGemm && kblock > 0;
    // Accumulators live in registers for one R x T block; with K blocking they live for all
    // tokens of a row block (R*16*T int32, in L1/L2) while K advances in blocks.
    acc.compute_at(y, kblocked ? nto : to).vectorize(lane, vl).unroll(rt);
    if (!kblocked) acc.unroll(t);
    if (vl < 16) acc.unroll(lane);
    Stage upd = acc.update();
    if (kblocked) {
      upd.split(r.z, rzb, rzk, kblock / 16, TailStrategy::GuardWithIf)
          .split(t, to, ti, T, TailStrategy::GuardWithIf)
          .reorder(r.x, lane, ti, rt, r.y, rzk, to, rzb, r[3]);
      upd.atomic().vectorize(r.x).vectorize(lane, vl).unroll(ti).unroll(rt).unroll(r.y);
      code.compute_at(acc, rzk);
      prefetch_w(upd, rzk, 1);
    } else if (kunroll > 1) {
      upd.split(r.z, rzo, rzi, kunroll, TailStrategy::GuardWithIf)
          .reorder(r.x, lane, t, rt, r.y, rzi, rzo, r[3]);
      upd.atomic().vectorize(r.x).vectorize(lane, vl).unroll(t).unroll(rt).unroll(r.y).unroll(rzi);
      code.compute_at(acc, rzo);
      prefetch_w(upd, rzo, kunroll);
    } else {
      upd.reorder(r.x, lane, t, rt, r.y, r.z, r[3]);
      upd.atomic().vectorize(r.x).vectorize(lane, vl).unroll(t).unroll(rt).unroll(r.y);
      code.compute_at(acc, r.z);
      prefetch_w(upd, r.z, 1);
    }
    if (vl < 16) upd.unroll(lane);
    code.vectorize(b, std::min(64, vl * 4)).unroll(g).unroll(rt).unroll(kc);
    if (vl * 4 < 64) code.unroll(b);
  }

  // decode=shift: the u8 code of 2-bit group g of a tile byte, (byte >> 2g) & 3.
  static Expr shift_decode(Expr byte, Expr g) {
    return (byte >> cast<uint8_t>(2 * g)) & cast<uint8_t>(3);
  }

  // Row blocks of R tiles x T tokens, parallel over row blocks (grain blocks per task). Blocks
  // smaller than R x T fall back to fewer tokens (4, 2, 1) and then to 1 x 1 blocks.
  void block_stages(int R, int T, Var nto) {
    Var nt{"nt"}, nti{"nti"}, to{"to"}, ti{"ti"}, par{"par"};
    Expr n_tiles = y.dim(0).extent() / 16;
    auto block_schedule = [&](Stage s, int rb, int tb) {
      s.split(n, nt, lane, 16, TailStrategy::RoundUp)
          .split(nt, nto, nti, rb, TailStrategy::ShiftInwards)
          .split(t, to, ti, tb, TailStrategy::ShiftInwards)
          .reorder(lane, nti, ti, to, nto)
          .vectorize(lane, vbits / 32)
          .unroll(nti)
          .unroll(ti);
    };
    std::vector<Stage> stages;
    stages.push_back(y.specialize(n_tiles >= R && y.dim(1).extent() >= T));
    block_schedule(stages.back(), R, T);
    for (int tb : {4, 2, 1}) {
      if (tb >= T) continue;
      stages.push_back(y.specialize(n_tiles >= R && y.dim(1).extent() >= tb));
      block_schedule(stages.back(), R, tb);
    }
    block_schedule(y, 1, 1);
    stages.push_back(y);
    for (Stage s : stages) {
      if (grain > 0) {
        s.split(nto, par, nto, grain, TailStrategy::GuardWithIf).parallel(par);
      } else {
        s.parallel(nto);
      }
    }
  }

  // accum=pmaddubsw: prod(j, lane, g, kc, s) = one pmaddubsw lane (a u8 x s8 pair summed in
  // i16); pair sums prods in i16 over the groups of `kunroll` tiles of a part (a chunk), acc
  // widens each chunk's sums to int32 (one pmaddwd against ones), chunk c of every part before
  // chunk c + 1. The kq % kunroll tiles after a part's last whole chunk are one more, shorter
  // i16 sum (pair_tail).
  void generate_i16_pairs(Expr kq, Expr parts) {
    Var j{"j"}, ck{"ck"}, h{"h"};
    const int U = kunroll;
    const bool split = decode == Decode::Split;
    if (split) {
      // g = 0, 2: (w >> 2g) & 3; g = 1, 3: (w >> 2(g-1)) & 12 = 4 * code. One w >> 4 for g = 2
      // and 3.
      Expr byte = w(b, kc, s, rt);
      Expr sh = byte >> cast<uint8_t>(4 * (g / 2));
      code(b, g, kc, s, rt) = sh & select(g % 2 == 0, cast<uint8_t>(3), cast<uint8_t>(12));
    } else {
      code(b, g, kc, s, rt) = shift_decode(w(b, kc, s, rt), g);
    }
    // prod is its own Func so that only the pairwise step is a saturating reduction (the
    // pmaddubsw pattern); it never saturates (at most 2 * 8 * 128). pair then sums prods with
    // plain adds: vpaddw runs on all four vector pipes of Zen 3, vpaddsw on two, shared with
    // vpmaddubsw (with decode=split's 8-tile chunks: 1.17-1.18x on L2-resident weights).
    Func prod{"prod"};
    RDom p(0, 2, "p");  // column in a pair
    prod(j, lane, g, kc, s, rt, t) = cast<int16_t>(0);
    prod(j, lane, g, kc, s, rt, t) =
        saturating_add(prod(j, lane, g, kc, s, rt, t),
                       cast<int16_t>(code(4 * lane + 2 * j + p, g, kc, s, rt)) *
                           cast<int16_t>(x(2 * j + p + 4 * g + 16 * (s * kq + kc), t)));
    // GEMV: two independent int16 chains per vector (h: even and odd groups) halve the latency
    // of the dependent adds; they are added (still exact) before widening. GEMM has a chain per
    // token already and needs the registers (measured on Zen 3: 2-8% faster GEMV, 10% slower
    // GEMM with two chains). decode=split: h (= g % 2) is also the scale class (code or
    // 4 * code), never mixed in int16.
    const int H = kGemm && !split ? 1 : 2;
    Expr chunks = kq / U;  // per part
    Func pair{"pair"}, pair_tail{"pair_tail"};
    RDom q(0, 4 / H, 0, U, "q");                           // q.x: group / H, q.y: tile
    RDom qt(0, 4 / H, chunks * U, kq - chunks * U, "qt");  // a part's tail tiles
    pair(j, lane, h, rt, t, ck, s) = cast<int16_t>(0);
    pair(j, lane, h, rt, t, ck, s) += prod(j, lane, H * q.x + h, ck * U + q.y, s, rt, t);
    pair_tail(j, lane, h, rt, t, s) = cast<int16_t>(0);
    pair_tail(j, lane, h, rt, t, s) += prod(j, lane, H * qt.x + h, qt.y, s, rt, t);
    // One int16 per (j, lane) from the H sums h0 and h1: decode=split's h = 1 holds sums of
    // 4 * code * x, multiples of 4, so >> 2 is exact, and the two scales then fit one int16
    // (|sum| <= 8192 each).
    auto combined = [&](Expr h0, Expr h1) {
      return split ? h0 + (h1 >> 2) : H == 2 ? h0 + h1 : h0;
    };
    RDom r(0, 2, 0, chunks, 0, parts, "r");  // r.x: j, r.y: chunk of U tiles, r.z: part
    RDom rj(0, 2, 0, parts, "rj");           // rj.x: j, rj.y: part
    acc(lane, rt, t) = 0;
    acc(lane, rt, t) += cast<int32_t>(
        combined(pair(r.x, lane, 0, rt, t, r.y, r.z), pair(r.x, lane, 1, rt, t, r.y, r.z)));
    acc(lane, rt, t) += cast<int32_t>(
        combined(pair_tail(rj.x, lane, 0, rt, t, rj.y), pair_tail(rj.x, lane, 1, rt, t, rj.y)));
    y(n, t) = acc(n % 16, n / 16, t) - xsum(t);

    const int vl = vbits / 32;
    layout_contract();
    Var nto{"nto"}, to{"to"};
    block_stages(rows, tokens, nto);
    // acc lives in registers for one block: compute it at the innermost block loop (to).
    acc.compute_at(y, to).vectorize(lane, vl).unroll(rt).unroll(t);
    Stage upd = acc.update(0), upd_tail = acc.update(1);
    // Parts inside chunks: chunk c of every part, then chunk c + 1 (parts streams per core).
    upd.reorder(r.x, lane, t, rt, r.z, r.y);
    upd.atomic().vectorize(r.x).vectorize(lane, vl).unroll(t).unroll(rt);
    upd_tail.reorder(rj.x, lane, t, rt, rj.y)
        .atomic()
        .vectorize(rj.x)
        .vectorize(lane, vl)
        .unroll(t)
        .unroll(rt);
    pair.compute_at(acc, r.z);
    // Per part: a part-count-sized buffer (parts is a run-time extent) would be heap-allocated
    // and zeroed for every row block (halide_malloc + memset + halide_free per 16 rows).
    pair_tail.compute_at(acc, rj.y);
    Func prod_tail = prod.clone_in(pair_tail);
    Func code_tail = code.clone_in(prod_tail);
    // Tiles are unrolled for kunroll <= 2 only: a longer unroll lets LLVM hoist the loads of
    // later tiles and spill the i16 sums, and a sum spilled to the stack turns the add chain
    // into a store-load chain (Zen 3, kunroll=8 fully unrolled: 0.75x of kunroll=2).
    schedule_pair_sum(pair, q, U <= 2, prod, code);
    schedule_pair_sum(pair_tail, qt, false, prod_tail, code_tail);
    if (vl < 16) {
      acc.unroll(lane);
      upd.unroll(lane);
      upd_tail.unroll(lane);
    }
    // kunroll <= 2: U tiles' prefetches per chunk; longer chunks prefetch one tile per tile (a
    // loop of 8 prefetches per chunk of 8 tiles was 5% slower on warm weights).
    if (U <= 2) {
      prefetch_w(upd, r.y, U);
    } else {
      prefetch_w(pair.update(), q.y, 1);
    }
  }

  // Schedule of an i16 sum over groups and tiles (pair or pair_tail) with its prod and code:
  // (j, lane) vectorized, one group pair (h) of one tile at a time, prod and code computed
  // per group pair where they are used.
  void schedule_pair_sum(Func f, RDom q, bool unroll_tiles, Func prod, Func code) {
    const int vl = vbits / 32;
    Var j = f.args()[0], l = f.args()[1], h = f.args()[2], r = f.args()[3], t = f.args()[4];
    f.vectorize(j).vectorize(l, vl).unroll(h).unroll(r).unroll(t);
    Stage u = f.update();
    u.reorder(j, l, h, t, r, q.x, q.y);
    u.vectorize(j).vectorize(l, vl).unroll(h).unroll(t).unroll(r).unroll(q.x);
    if (unroll_tiles) u.unroll(q.y);
    Var pj = prod.args()[0], pl = prod.args()[1], pg = prod.args()[2], pr = prod.args()[5],
        pt = prod.args()[6];
    RVar pp = prod.rvars(0)[0];
    prod.compute_at(f, q.x).vectorize(pj).vectorize(pl, vl).unroll(pg).unroll(pr).unroll(pt);
    // atomic(true): saturating_add is not associative in general; here it never saturates
    // (see accum), so the reduction order is free.
    prod.update()
        .reorder(pp, pj, pl, pg, pt, pr)
        .atomic(true)
        .vectorize(pp)
        .vectorize(pj)
        .vectorize(pl, vl)
        .unroll(pg)
        .unroll(pt)
        .unroll(pr);
    if (vl < 16) {
      f.unroll(l);
      u.unroll(l);
      prod.unroll(pl);
      prod.update().unroll(pl);
    }
    Var cb = code.args()[0], cg = code.args()[1], cr = code.args()[4];
    code.compute_at(f, q.x).vectorize(cb, std::min(64, vl * 4)).unroll(cg).unroll(cr);
    if (vl * 4 < 64) code.unroll(cb);
  }

  // Software prefetch of the weights `prefetch` tiles ahead of loop `at`, one iteration of which
  // advances `step` tiles along K. NonFaulting: near the end of a row tile the prefetched tiles
  // lie past K, which in memory is the start of the next row tile (tiles are dense, row tile
  // after row tile), exactly what the loop reads next. GuardWithIf would drop those prefetches,
  // so every row tile began with `prefetch` unprefetched tiles (20% of a K = 2560 row at 32),
  // and it costs a bounds branch per iteration. x86 prefetches never fault.
  void prefetch_w(Stage s, const VarOrRVar& at, int step) {
    if (prefetch <= 0) return;
    s.prefetch(w, at, at, std::max(1, ((int)prefetch + step - 1) / step),
               PrefetchBoundStrategy::NonFaulting);
  }

  // Layout contract: tiles are dense 64-byte blocks; output rows come in whole tiles.
  void layout_contract() {
    w.dim(0).set_bounds(0, 64);
    w.dim(1).set_min(0).set_stride(64);
    w.dim(2).set_min(0);  // parts: any stride (a fused group's member is a slice of each part)
    w.dim(3).set_min(0).set_stride(64 * w.dim(1).extent());
    x.dim(0).set_min(0).set_stride(1);
    y.dim(0).set_min(0).set_stride(1);
    y.dim(1).set_min(0);
    y.dim(0).set_extent((y.dim(0).extent() / 16) * 16);
  }

  // decode=mask (GEMV): acc per group g of code*4^g products, combined as
  // acc0 + acc1/4 + acc2/16 + acc3/64 (exact shifts: each acc_g is a multiple of 4^g).
  // kunroll = U > 1: the tiles of a part go in chunks of U, tile i of a chunk into chain i, so
  // each group has U independent vpdpbusd chains (with rows = 1 one chain per group advances
  // once per tile and the dot product's latency sets the pace: Zen 5, warm weights, u1 = u2 = u4
  // while the unrolled tiles shared a chain); the kq % U tiles after a part's last chunk go into
  // chain 0 (a second update). The chains are summed at the end (still exact: every sum is a
  // multiple of 4^g and the total is the same). Chunks are an RDom dimension of their own, not a
  // split of the tiles: a GuardWithIf split clamps the tile index, and Halide then sized the
  // prefetch of the next chunk to nothing (the u > 1 points ran without prefetches).
  void generate_masked(Expr kq, Expr parts) {
    const int U = kunroll;
    Var c{"c"};
    code(b, g, kc, s, rt) = masked_code(w(b, kc, s, rt), g);
    acc(lane, g, c, rt, t) = 0;
    auto product = [&](Expr cv, Expr a) {
      return accum == Accum::Vnni ? cast<int32_t>(cv) * cast<int32_t>(a)
                                  : cast<int32_t>(cast<int16_t>(cv) * cast<int16_t>(a));
    };
    // r.x: column within a group of 4, r.y: tile within a chunk (= chain), r.z: chunk, r[3]: part
    Expr chunks = kq / U;
    RDom r(0, 4, 0, U, 0, chunks, 0, parts, "r");
    Expr tile_r = r.z * U + r.y;
    acc(lane, g, r.y, rt, t) += product(code(4 * lane + r.x, g, tile_r, r[3], rt),
                                        x(r.x + 4 * g + 16 * (r[3] * kq + tile_r), t));
    Func code_tail{"code_tail"};
    if (U > 1) {
      code_tail(b, g, kc, s, rt) = masked_code(w(b, kc, s, rt), g);
      // rq.x: column, rq.y: tile (after the last whole chunk), rq.z: part
      RDom rq(0, 4, chunks * U, kq - chunks * U, 0, parts, "rq");
      acc(lane, g, 0, rt, t) += product(code_tail(4 * lane + rq.x, g, rq.y, rq.z, rt),
                                        x(rq.x + 4 * g + 16 * (rq.z * kq + rq.y), t));
    }
    Expr l = n % 16, tile = n / 16;
    auto group = [&](int gi) {
      Expr sum = acc(l, gi, 0, tile, t);
      for (int ci = 1; ci < U; ci++) sum += acc(l, gi, ci, tile, t);
      return sum;
    };
    y(n, t) = group(0) + (group(1) >> 2) + (group(2) >> 4) + (group(3) >> 6) - xsum(t);

    const int vl = vbits / 32;
    layout_contract();

    Var nto{"nto"}, to{"to"};
    block_stages(rows, 1, nto);
    acc.bound(c, 0, U);
    acc.compute_at(y, to).vectorize(lane, vl).unroll(g).unroll(c).unroll(rt).unroll(t);
    Stage upd = acc.update(0);
    upd.reorder(r.x, lane, g, t, rt, r.y, r.z, r[3]);
    upd.atomic().vectorize(r.x).vectorize(lane, vl).unroll(g).unroll(t).unroll(rt).unroll(r.y);
    // Decoded (and prefetched, `prefetch` tiles ahead) tile by tile inside the unrolled chunk.
    auto schedule_code = [&](Func f, const RVar& at) {
      f.compute_at(acc, at).vectorize(b, std::min(64, vl * 4)).unroll(g).unroll(rt).unroll(kc);
      if (vl * 4 < 64) f.unroll(b);
    };
    schedule_code(code, r.y);
    prefetch_w(upd, r.y, 1);
    if (vl < 16) {
      acc.unroll(lane);
      upd.unroll(lane);
    }
    if (U > 1) {
      Stage tail = acc.update(1);
      const std::vector<RVar> q = acc.rvars(1);
      const RVar qx = q[0], qy = q[1], qz = q[2];
      tail.reorder(qx, lane, g, t, rt, qy, qz);
      tail.atomic().vectorize(qx).vectorize(lane, vl).unroll(g).unroll(t).unroll(rt);
      if (vl < 16) tail.unroll(lane);
      schedule_code(code_tail, qy);
    }
  }

  // decode=mask: w & (3 << 2g) = code * 4^g, one op per group.
  static Expr masked_code(Expr byte, Expr g) {
    return byte & (cast<uint8_t>(3) << cast<uint8_t>(2 * g));
  }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(I2SMatmul<false>, i2s_gemv)
HALIDE_REGISTER_GENERATOR(I2SMatmul<true>, i2s_gemm)

// Referenced by the JIT path (kernels/variant.cc) so this file's registrations are linked into
// the runtime library.
namespace tritune {
void link_i2s_generators() {}
}  // namespace tritune
