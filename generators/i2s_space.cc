// Search spaces of the I2_S family (i2s_generator.cpp): domains of every GeneratorParam and the
// constraints that prune illegal or pointless points. The tuner enumerates/samples these; the
// AOT defaults (generators/CMakeLists.txt) are defaults_for(isa) of each space (a test checks).
#include <string>

#include "generators/space.h"
#include "kernels/cpu_features.h"

namespace tritune {

namespace {

int vector_bits(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni:
      return 512;
    case Isa::kAvx2:
      return 256;
    default:
      return 128;
  }
}
int vector_regs(Isa isa) {
  return isa == Isa::kAvx512Vnni ? 32 : 16;
}

std::vector<Constraint> i2s_constraints() {
  std::vector<Constraint> c;
  c.push_back({"vbits <= the ISA's vector width", [](const Params& p, const Shape*, Isa isa) {
                 const int v = std::stoi(p.at("vbits"));
                 return v <= vector_bits(isa)
                            ? std::string()
                            : std::to_string(v) + " > " + std::to_string(vector_bits(isa));
               }});
  // Accumulators (rows*tokens vectors per 16-lane tile, times 4 with decode=mask: one per
  // 2-bit group) + decoded weights (rows) + the broadcast activation must fit the register
  // file, else every K step spills.
  c.push_back(
      {"rows*tokens*(512/vbits)*(decode=mask ? 4*kunroll : split ? 2 : 1) + rows*(512/vbits) + "
       "1 <= vector registers",
       [](const Params& p, const Shape*, Isa isa) {
         const int per_tile = 512 / std::stoi(p.at("vbits"));
         const int rows = std::stoi(p.at("rows")), tokens = std::stoi(p.at("tokens"));
         auto d = p.find("decode");
         // decode=mask: one accumulator per 2-bit group and unrolled tile (its own chain).
         const int groups = d == p.end()           ? 1
                            : d->second == "mask"  ? 4 * std::stoi(p.at("kunroll"))
                            : d->second == "split" ? 2
                                                   : 1;
         // accum=pmaddubsw: the registers hold the i16 pair sums; the int32 accumulators are
         // touched once per kunroll tiles (measured on Zen 3: 4 tokens with the int32 sums
         // partly spilled beat 3 tokens with everything in registers).
         const int need = rows * tokens * per_tile * groups + rows * per_tile + 1;
         return need <= vector_regs(isa)
                    ? std::string()
                    : std::to_string(need) + " registers > " + std::to_string(vector_regs(isa));
       }});
  c.push_back(
      {"accum=pmaddubsw needs decode=shift or split and kblock=0 (i16 sums over whole "
       "tiles)",
       [](const Params& p, const Shape*, Isa) {
         if (p.at("accum") != "pmaddubsw") return std::string();
         auto d = p.find("decode");
         if (d != p.end() && d->second == "mask") return std::string("decode=mask");
         return p.at("kblock") == "0" ? std::string() : std::string("kblock > 0");
       }});
  // Two groups of 4 * code pairs (each in [-2048, 2032]) per tile: eight tiles fill int16.
  c.push_back(
      {"decode=split needs accum=pmaddubsw and kunroll <= 8 (int16 range of 4 * code "
       "sums)",
       [](const Params& p, const Shape*, Isa) {
         auto d = p.find("decode");
         if (d == p.end() || d->second != "split") return std::string();
         if (p.at("accum") != "pmaddubsw") return "accum=" + p.at("accum");
         return std::stoi(p.at("kunroll")) <= 8 ? std::string() : "kunroll=" + p.at("kunroll");
       }});
  c.push_back({"kunroll > 4 only with accum=pmaddubsw (elsewhere it only grows the code)",
               [](const Params& p, const Shape*, Isa) {
                 return std::stoi(p.at("kunroll")) <= 4 || p.at("accum") == "pmaddubsw"
                            ? std::string()
                            : "kunroll=" + p.at("kunroll");
               }});
  c.push_back({"K % kblock == 0", [](const Params& p, const Shape* s, Isa) {
                 const int kb = std::stoi(p.at("kblock"));
                 if (kb == 0 || s == nullptr) return std::string();
                 return s->k % kb == 0
                            ? std::string()
                            : "K=" + std::to_string(s->k) + " % " + std::to_string(kb) + " != 0";
               }});
  c.push_back({"kblock < K", [](const Params& p, const Shape* s, Isa) {
                 const int kb = std::stoi(p.at("kblock"));
                 if (kb == 0 || s == nullptr) return std::string();
                 return kb < s->k ? std::string() : std::string("block not smaller than K");
               }});
  c.push_back({"decode=mask needs K <= 2^19 (int32 range of code * 64 sums)",
               [](const Params& p, const Shape* s, Isa) {
                 auto it = p.find("decode");
                 if (it == p.end() || it->second != "mask" || s == nullptr) return std::string();
                 return s->k <= (1 << 19) ? std::string()
                                          : "K=" + std::to_string(s->k) + " > 524288";
               }});
  return c;
}

}  // namespace

std::vector<SearchSpace> i2s_spaces() {
  SearchSpace gemv;
  gemv.family = "i2s";
  gemv.op = "gemv";
  gemv.format = "i2_s";
  gemv.generator = "i2s_gemv";
  gemv.params = {
      {"rows",
       "r",
       {"1", "2", "4", "6", "8"},
       "1",
       {},
       "16-row tiles per register block (one sequential stream per part; more rows share the "
       "activation broadcasts but read rows side by side)"},
      {"tokens", "t", {"1"}, "1", {}, "tokens per block (GEMV: one)"},
      {"kunroll",
       "u",
       {"1", "2", "4", "8", "16"},
       "1",
       {{"avx2", "8"}, {"avx512vnni", "4"}},
       "unroll of the K loop in 16-column tiles (accum=pmaddubsw: tiles summed in i16 before "
       "widening; decode=mask: each unrolled tile into its own accumulators)"},
      {"vbits",
       "v",
       {"128", "256", "512"},
       "512",
       {{"avx2", "256"}, {"x86_64", "128"}},
       "accumulator vector width in bits"},
      {"grain",
       "g",
       {"0", "1", "2", "4", "8", "16"},
       "4",
       {},
       "register blocks per parallel task (0: one task per row block)"},
      {"kblock", "k", {"0"}, "0", {}, "K block (GEMV streams K once: none)"},
      {"accum",
       "a",
       {"vnni", "pmaddwd", "pmaddubsw"},
       "vnni",
       {{"avx2", "pmaddubsw"}},
       "accumulation: vnni = 4-way u8*s8 dot (vpdpbusd), pmaddwd = i16 widening pairs, "
       "pmaddubsw = u8*s8 pairs summed in i16 over kunroll tiles (AVX2)"},
      {"prefetch",
       "p",
       {"0", "8", "16", "32", "64", "128"},
       "32",
       {{"avx2", "64"}, {"avx512vnni", "64"}},
       "software prefetch distance along K in 16-column tiles (0 = off)"},
      {"decode",
       "d",
       {"shift", "mask", "split"},
       "mask",
       {{"avx2", "split"}, {"x86_64", "shift"}},
       "2-bit decode: shift = (w >> 2g) & 3; mask = w & (3 << 2g) with one accumulator per "
       "group (one op per group instead of two); split = one shift per two groups, groups "
       "1 and 3 as 4 * code in their own sums (accum=pmaddubsw)"},
  };
  gemv.constraints = i2s_constraints();

  SearchSpace gemm = gemv;
  gemm.op = "gemm";
  gemm.generator = "i2s_gemm";
  gemm.params = {
      {"rows",
       "r",
       {"1", "2", "3", "4"},
       "2",
       {{"avx2", "1"}, {"x86_64", "1"}},
       "16-row tiles per register block"},
      {"tokens",
       "t",
       {"2", "3", "4", "6", "8", "12"},
       "8",
       {{"avx2", "4"}, {"x86_64", "2"}},
       "tokens per register block: each decoded weight vector is reused this often"},
      {"kunroll",
       "u",
       {"1", "2", "4", "8", "16"},
       "1",
       {{"avx2", "8"}},
       "unroll of the K loop in 16-column tiles (see the GEMV space)"},
      {"vbits",
       "v",
       {"128", "256", "512"},
       "512",
       {{"avx2", "256"}, {"x86_64", "128"}},
       "accumulator vector width in bits"},
      {"grain",
       "g",
       {"0", "1", "2", "4"},
       "1",
       {{"avx2", "4"}},
       "register blocks per parallel task"},
      {"kblock",
       "k",
       {"0", "512", "1280"},
       "0",
       {},
       "K block: activations of a token block stay in L1 across a row block"},
      {"accum",
       "a",
       {"vnni", "pmaddwd", "pmaddubsw"},
       "vnni",
       {{"avx2", "pmaddubsw"}},
       "accumulation strategy (see the GEMV space)"},
      {"prefetch", "p", {"0", "16"}, "0", {}, "software prefetch distance along K (tiles)"},
      {"decode", "d", {"shift"}, "shift", {}, "2-bit decode (GEMM: shift only)"},
  };
  return {gemv, gemm};
}

}  // namespace tritune
