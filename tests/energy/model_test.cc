// The per-operation energy model and the op counts it is applied to, including the two
// reproductions the issue asks for: the b1.58 paper's 71.4x matmul arithmetic energy ratio and
// the order of the 2B4T report's per-token energy.
#include <gtest/gtest.h>

#include "energy/energy_model.h"
#include "kernels/error.h"
#include "kernels/op_counts.h"

namespace tritune {
namespace {

struct Linear {
  int64_t n, k;
};

// The linear layers of one decoder block of a LLaMA-style model (q, k, v, o, gate, up, down).
std::vector<Linear> block(int64_t hidden, int64_t ffn, int64_t kv_dim) {
  return {{hidden, hidden}, {kv_dim, hidden}, {kv_dim, hidden}, {hidden, hidden},
          {ffn, hidden},    {ffn, hidden},    {hidden, ffn}};
}

OpCounts per_token(Format f, int64_t hidden, int64_t ffn, int64_t kv_dim, int layers,
                   OpScope scope) {
  OpCounts c;
  for (const Linear& l : block(hidden, ffn, kv_dim)) c += op_counts(f, l.n, l.k, 1, scope);
  return c * (double)layers;
}

TEST(OpCounts, MatmulScopeFollowsTheRegistry) {
  const OpCounts t = op_counts(Format::kI2S, 256, 512, 3, OpScope::kMatmul);
  EXPECT_DOUBLE_EQ(t.macs, 256.0 * 512 * 3);
  EXPECT_DOUBLE_EQ(t.int8_add, t.macs);  // ternary: an add per MAC, no multiply
  EXPECT_EQ(t.int8_mul + t.fp16_mul + t.fp32_mul + t.fp16_add + t.fp32_add, 0.0);
  EXPECT_DOUBLE_EQ(t.bytes_weights, 256.0 * 512 * 2 / 8);         // 2 bits per weight
  EXPECT_DOUBLE_EQ(t.bytes_acts, 3.0 * 512 * 1 + 3.0 * 256 * 4);  // int8 in, f32 out

  const OpCounts h = op_counts(Format::kF16, 256, 512, 3, OpScope::kMatmul);
  EXPECT_DOUBLE_EQ(h.fp16_mul, h.macs);
  EXPECT_DOUBLE_EQ(h.fp16_add, h.macs);
  EXPECT_DOUBLE_EQ(h.bytes_weights, 256.0 * 512 * 2);
  const OpCounts s = op_counts(Format::kF32, 256, 512, 3, OpScope::kMatmul);
  EXPECT_DOUBLE_EQ(s.fp32_mul, s.macs);
  EXPECT_DOUBLE_EQ(s.bytes_weights, 256.0 * 512 * 4);
  EXPECT_DOUBLE_EQ(s.bytes_acts, 3.0 * 512 * 4 + 3.0 * 256 * 4);
}

TEST(OpCounts, KernelScopeAddsQuantizationForInt8Activations) {
  const OpCounts m = op_counts(Format::kI2S, 100, 200, 2, OpScope::kMatmul);
  const OpCounts k = op_counts(Format::kI2S, 100, 200, 2, OpScope::kKernel);
  EXPECT_DOUBLE_EQ(k.fp32_add - m.fp32_add, 2.0 * 200);                        // absmax compares
  EXPECT_DOUBLE_EQ(k.fp32_mul - m.fp32_mul, 2.0 * (200 + 1) + 2.0 * 100 + 2);  // scale, dequant
  EXPECT_DOUBLE_EQ(k.int8_add - m.int8_add, 2.0 * 200 + 2.0 * 100);            // code sums, -sum(a)
  // Float formats do nothing besides the product.
  const OpCounts f = op_counts(Format::kF32, 100, 200, 2, OpScope::kKernel);
  EXPECT_DOUBLE_EQ(f.total_ops(),
                   op_counts(Format::kF32, 100, 200, 2, OpScope::kMatmul).total_ops());
}

TEST(OpCounts, EveryFormatIsCountedAndBadShapesThrow) {
  for (const FormatTraits& t : all_formats()) {
    const OpCounts c = op_counts(t.id, 64, 128, 1);
    EXPECT_GT(c.macs, 0) << t.name;
    EXPECT_GT(arithmetic_joules(c, find_energy_table("7nm")), 0) << t.name;
    EXPECT_NE(op_count_rule(t.id).find(t.name), std::string::npos);
  }
  EXPECT_THROW(op_counts(Format::kI2S, 0, 128, 1), Error);
  EXPECT_THROW(op_counts(Format::kF16, 64, -1, 1), Error);
  EXPECT_THROW(op_counts(Format::kF16, 64, 128, 0), Error);
  const OpCounts a = op_counts(Format::kF16, 8, 8, 1);
  OpCounts b = a * 3.0;
  b += a;
  EXPECT_DOUBLE_EQ(b.fp16_mul, 4 * a.fp16_mul);
  EXPECT_NE(b.to_string().find("fp16_mul=256"), std::string::npos) << b.to_string();
}

TEST(EnergyModel, TablesHoldThePapersValuesWithSources) {
  const EnergyTable& t7 = find_energy_table("7nm");
  EXPECT_DOUBLE_EQ(t7.int8_add.pj, 0.007);
  EXPECT_DOUBLE_EQ(t7.int8_mul.pj, 0.07);
  EXPECT_DOUBLE_EQ(t7.fp16_add.pj + t7.fp16_mul.pj, 0.50);
  EXPECT_DOUBLE_EQ(t7.fp32_add.pj, 0.38);
  EXPECT_DOUBLE_EQ(t7.fp32_mul.pj, 1.31);
  const EnergyTable& t45 = find_energy_table("45nm");
  EXPECT_DOUBLE_EQ(t45.int8_add.pj, 0.03);
  EXPECT_DOUBLE_EQ(t45.fp16_mul.pj, 1.1);
  EXPECT_DOUBLE_EQ(t45.fp32_mul.pj, 3.7);
  for (const EnergyTable& t : energy_tables()) {
    for (const OpEnergy* e : {&t.int8_add, &t.int8_mul, &t.fp16_add, &t.fp16_mul, &t.fp32_add,
                              &t.fp32_mul, &t.dram_byte}) {
      EXPECT_GT(e->pj, 0);
      EXPECT_GT(std::string(e->source).size(), 10u);  // every number says where it is from
      EXPECT_GT(std::string(e->checked).size(), 10u);
    }
  }
  try {
    find_energy_table("3nm");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known: 7nm, 45nm"), std::string::npos);
  }
}

// b1.58 (2402.17764) reports that BitNet b1.58 spends 71.4x less arithmetic energy on matrix
// multiplication than LLaMA at 7 nm, for its 3B-scale comparison. What it compares: per MAC,
// the FP16 LLaMA does one FP16 multiply and one FP16 add (0.34 + 0.16 = 0.50 pJ), the ternary
// model with INT8 activations does one INT8 add (0.007 pJ); 0.50 / 0.007 = 71.43. Because both
// sides count the same MACs, the ratio does not depend on the shapes; we still sum the model's
// real 3B shapes (b1.58 3B: hidden 3200, FFN 8640, 26 layers, MHA) through op_counts, so the
// test exercises the counting, not just the table.
TEST(EnergyModel, ReproducesB158MatmulArithmeticRatio) {
  const int64_t hidden = 3200, ffn = 8640;
  const int layers = 26;
  for (const auto& [table, expected] :
       {std::pair{"7nm", 0.50 / 0.007}, std::pair{"45nm", 1.5 / 0.03}}) {
    const EnergyTable& t = find_energy_table(table);
    const double fp16 = arithmetic_joules(
        per_token(Format::kF16, hidden, ffn, hidden, layers, OpScope::kMatmul), t);
    const double tern = arithmetic_joules(
        per_token(Format::kI2S, hidden, ffn, hidden, layers, OpScope::kMatmul), t);
    EXPECT_NEAR(fp16 / tern, expected, 1e-6 * expected) << table;
  }
  const EnergyTable& t7 = find_energy_table("7nm");
  const double ratio7 =
      arithmetic_joules(per_token(Format::kF16, hidden, ffn, hidden, layers, OpScope::kMatmul),
                        t7) /
      arithmetic_joules(per_token(Format::kI2S, hidden, ffn, hidden, layers, OpScope::kMatmul), t7);
  EXPECT_NEAR(ratio7, 71.4, 0.05);
  // What our I2_S kernel really does adds the activation quantizer and the dequantization: the
  // ratio drops (to about 65x at these shapes), but stays far above the float baselines.
  const double kernel_ratio =
      arithmetic_joules(per_token(Format::kF16, hidden, ffn, hidden, layers, OpScope::kKernel),
                        t7) /
      arithmetic_joules(per_token(Format::kI2S, hidden, ffn, hidden, layers, OpScope::kKernel), t7);
  EXPECT_LT(kernel_ratio, ratio7);
  EXPECT_GT(kernel_ratio, 40.0);
}

// The 2B4T report (2504.12285, Table 1) estimates 0.028 J per decoded token for BitNet b1.58
// 2B4T (and 0.258 J for LLaMA 3.2 1B). It does not publish its formula, so we reproduce the
// order, not the digits. Assumptions, stated: decode of one token; only the non-embedding linear
// layers (the report's memory row is "non-embedding"); 2B4T shapes hidden 2560, FFN 6912, 30
// layers, 20 heads / 5 KV heads of 128 (kv_dim 640); weights in I2_S (2 bits each) streamed from
// DRAM once per token; 7 nm arithmetic; attention over the KV cache, norms and the LM head left
// out. The model gives 0.084 J (3.0x the report): DRAM traffic of the 0.52 GB of weights at
// 160 pJ/B dominates; the arithmetic is ~17 uJ. LLaMA 3.2 1B gives 0.31 J (report 0.258 J).
TEST(EnergyModel, TwoB4TPerTokenEnergyIsOfTheReportsOrder) {
  const EnergyTable& t7 = find_energy_table("7nm");
  const OpCounts bitnet = per_token(Format::kI2S, 2560, 6912, 640, 30, OpScope::kKernel);
  EXPECT_NEAR(bitnet.macs, 2.084e9, 0.01e9);  // ~2.08 B non-embedding parameters
  const ModelEnergy e = model_energy(bitnet, t7);
  EXPECT_GT(e.total_j(), 0.028 / 5) << e.total_j();
  EXPECT_LT(e.total_j(), 0.028 * 5) << e.total_j();
  EXPECT_LT(e.arithmetic_j, 1e-4);  // the ternary arithmetic itself is ~17 uJ
  // LLaMA 3.2 1B (hidden 2048, FFN 8192, 16 layers, 8 KV heads of 64) in FP16, same rules:
  // the report's 0.258 J.
  const ModelEnergy llama =
      model_energy(per_token(Format::kF16, 2048, 8192, 512, 16, OpScope::kKernel), t7);
  EXPECT_GT(llama.total_j(), 0.258 / 5) << llama.total_j();
  EXPECT_LT(llama.total_j(), 0.258 * 5) << llama.total_j();
  EXPECT_GT(llama.total_j() / e.total_j(), 3.0);  // the report: 9.2x
}

TEST(EnergyModel, ModelMeterTurnsReportedWorkIntoEstimatedJoules) {
  ModelMeter m(find_energy_table("45nm"));
  m.start();
  const OpCounts w = op_counts(Format::kF32, 1000, 1000, 1);
  m.add_work(w);
  m.add_work(w);
  m.stop();
  const EnergyReading r = m.results();
  EXPECT_EQ(r.source, "model");
  EXPECT_TRUE(r.estimated);
  EXPECT_EQ(r.primary_domain(), "model");
  const ModelEnergy e = model_energy(w * 2.0, find_energy_table("45nm"));
  EXPECT_NEAR(r.primary_joules(), e.total_j(), 1e-15);
  EXPECT_NEAR(r.joules(EnergyDomain::kModel), e.arithmetic_j + e.memory_j, 1e-15);
  EXPECT_NE(r.note.find("45nm"), std::string::npos);
  m.start();  // a new window forgets the old work
  m.stop();
  EXPECT_EQ(m.results().primary_joules(), 0.0);
}

// joules = sum of count x pJ per operation + (weight + activation bytes) x pJ per DRAM byte,
// computed here by hand from the 7 nm table: INT8 add 0.007, FP16 mul 0.34, FP32 add 0.38 pJ,
// DRAM 160 pJ/byte.
TEST(EnergyModel, ChargesEveryOperationAndBothWeightAndActivationBytes) {
  OpCounts c;
  c.int8_add = 1e6;
  c.fp16_mul = 2e6;
  c.fp32_add = 3e6;
  c.bytes_weights = 1000;
  c.bytes_acts = 250;
  const ModelEnergy e = model_energy(c, find_energy_table("7nm"));
  // 7000 + 680000 + 1140000 pJ; (1000 + 250) x 160 pJ.
  EXPECT_NEAR(e.arithmetic_j, 1.827e-6, 1e-15);
  EXPECT_NEAR(e.memory_j, 2.0e-7, 1e-15);
  EXPECT_NEAR(e.total_j(), 2.027e-6, 1e-15);
}

}  // namespace
}  // namespace tritune
