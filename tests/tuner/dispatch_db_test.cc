#include "tuner/dispatch_db.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>

#include "generators/space.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/variant.h"
#include "synthetic.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"

namespace tritune {
namespace {

using testing::scratch_dir;

// A legal non-default point of the real i2s gemv space (names must parse for lookup_variant).
std::string gemv_point(const std::string& rows, const std::string& grain) {
  const SearchSpace& s = find_space("i2s", "gemv");
  Params p = s.defaults_for(selected_isa());
  p["rows"] = rows;
  p["grain"] = grain;
  return variant_name(s, p, selected_isa());
}

Record rec(const std::string& variant, int64_t n, int64_t k, int64_t tokens, int threads, double t,
           double base, const std::string& cache = "cold") {
  Record r;
  r.task = {"i2_s", "i2s", tokens == 1 ? "gemv" : "gemm", n, k, tokens, threads, cache};
  r.variant = variant;
  r.m.time_s = {t, t, t};
  r.m.baseline_time_s = {base, base, base};
  r.m.baseline_variant = "default";
  r.value = t;
  r.baseline_value = base;
  return r;
}

TEST(DispatchDb, SelectsTheBestValidRecordPerKey) {
  const std::string a = gemv_point("1", "8"), b = gemv_point("1", "2"), c = gemv_point("1", "16");
  std::vector<Record> rs = {rec(a, 2560, 2560, 1, 1, 1.0, 2.0), rec(b, 2560, 2560, 1, 1, 0.5, 2.0),
                            rec(c, 2560, 2560, 1, 1, 0.1, 2.0), rec(a, 2560, 2560, 1, 2, 0.9, 1.0),
                            rec(b, 640, 2560, 1, 1, 3.0, 1.0)};
  rs[2].m.status = status::kCorrectness;  // fastest but wrong: never chosen
  rs[2].m.reason = "wrong";
  const auto ws = select_winners(rs, Objective::kTime);
  ASSERT_EQ(ws.size(), 2u) << "640x2560 is slower than its default: no entry";
  EXPECT_EQ(ws[0].entry.variant, b);
  EXPECT_DOUBLE_EQ(ws[0].speedup, 4.0);
  EXPECT_EQ(ws[0].entry.tokens, 1);
  EXPECT_EQ(ws[0].evaluated, 2u);
  EXPECT_EQ(ws[1].entry.threads, 2);
  EXPECT_EQ(select_winners(rs, Objective::kTime, "cold", false).size(), 3u);
}

TEST(DispatchDb, AConfirmationWithMoreSamplesSupersedesTheSearchRecord) {
  const std::string a = gemv_point("1", "8"), b = gemv_point("1", "2");
  Record lucky = rec(a, 2560, 2560, 1, 1, 0.1, 1.0);
  Record confirmed = rec(a, 2560, 2560, 1, 1, 0.9, 1.0);
  confirmed.m.time_s.resize(9, 0.9);
  confirmed.m.baseline_time_s.resize(9, 1.0);
  const auto ws =
      select_winners({lucky, confirmed, rec(b, 2560, 2560, 1, 1, 0.5, 1.0)}, Objective::kTime);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].entry.variant, b);
}

// A candidate measured twice with as many samples each: the later record is the evidence (a
// re-run after a change of conditions), whichever way it went.
TEST(DispatchDb, OfTwoRecordsWithEqualSamplesTheLaterOneCounts) {
  const std::string a = gemv_point("1", "8"), b = gemv_point("1", "2");
  const Record b_mid = rec(b, 2560, 2560, 1, 1, 0.5, 1.0);
  // a: 0.2 first, then 0.8 (3 samples each): the later 0.8 loses to b's 0.5.
  auto ws = select_winners(
      {rec(a, 2560, 2560, 1, 1, 0.2, 1.0), rec(a, 2560, 2560, 1, 1, 0.8, 1.0), b_mid},
      Objective::kTime);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].entry.variant, b);
  EXPECT_DOUBLE_EQ(ws[0].speedup, 2.0);
  // The other order: a's later 0.2 wins with speedup 1 / 0.2.
  ws = select_winners(
      {rec(a, 2560, 2560, 1, 1, 0.8, 1.0), rec(a, 2560, 2560, 1, 1, 0.2, 1.0), b_mid},
      Objective::kTime);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].entry.variant, a);
  EXPECT_DOUBLE_EQ(ws[0].speedup, 5.0);
  EXPECT_EQ(ws[0].evaluated, 2u) << "a and b: two candidates, however often measured";
}

// A winner that only ties its default (paired ratio exactly 1) gains nothing: no entry, the
// default keeps running; asked for every key, it is listed with speedup 1.
TEST(DispatchDb, AWinnerThatOnlyTiesTheDefaultGivesNoEntry) {
  const std::vector<Record> rs = {rec(gemv_point("1", "8"), 2560, 2560, 1, 1, 0.75, 0.75)};
  EXPECT_TRUE(select_winners(rs, Objective::kTime).empty());
  const auto all = select_winners(rs, Objective::kTime, "cold", false);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_DOUBLE_EQ(all[0].speedup, 1.0);
}

TEST(DispatchDb, PrefersTheRequestedCacheModeAndBucketsTokens) {
  const std::string a = gemv_point("1", "8"), b = gemv_point("1", "2");
  std::vector<Record> rs = {rec(a, 2560, 2560, 1, 1, 0.2, 1.0, "warm"),
                            rec(b, 2560, 2560, 1, 1, 0.5, 1.0, "cold")};
  EXPECT_EQ(select_winners(rs, Objective::kTime, "cold")[0].entry.variant, b);
  EXPECT_EQ(select_winners(rs, Objective::kTime, "warm")[0].entry.variant, a);
  const SearchSpace& gemm = find_space("i2s", "gemm");
  rs = {rec(variant_name(gemm, gemm.defaults_for(selected_isa()), selected_isa()), 2560, 2560, 100,
            1, 0.5, 1.0)};
  const auto ws = select_winners(rs, Objective::kTime);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].entry.tokens, 128);
}

TEST(DispatchDb, EnergyObjectiveNeedsEnergySamples) {
  std::vector<Record> rs = {rec(gemv_point("1", "8"), 2560, 2560, 1, 1, 0.5, 1.0)};
  EXPECT_TRUE(select_winners(rs, Objective::kEnergy).empty());
  rs[0].m.energy_j = {2.0};
  rs[0].m.baseline_energy_j = {3.0};
  const auto ws = select_winners(rs, Objective::kEdp);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_DOUBLE_EQ(ws[0].speedup, 3.0);  // (3 * 1) / (2 * 0.5)
}

// A record names a variant this build cannot run (edited by hand, or from a space that has since
// changed): it is never a winner, and it is named. Left in, it was shown as the best and
// exported to the runtime, where the model's first call on that shape threw.
TEST(DispatchDb, RecordsOfVariantsThisBuildCannotRunAreSkippedAndNamed) {
  const std::string good = gemv_point("1", "8");
  const size_t r = good.find("_r1_");
  ASSERT_NE(r, std::string::npos) << good;
  const std::string rows7 = good.substr(0, r) + "_r7_" + good.substr(r + 4);  // no rows 7
  const SearchSpace& gs = find_space("i2s", "gemm");
  const std::string gemm = variant_name(gs, gs.defaults_for(selected_isa()), selected_isa());
  // A legal GEMM point, but its K block does not divide K = 640 (a shape constraint).
  Params p = gs.defaults_for(selected_isa());
  p["kblock"] = "512";
  const std::string kblock = variant_name(gs, p, selected_isa());
  ASSERT_EQ(gs.check(p, nullptr, selected_isa()), "");
  const std::vector<Record> rs = {
      rec(rows7, 2560, 2560, 1, 1, 0.1, 1.0), rec(gemm, 2560, 2560, 1, 1, 0.1, 1.0),
      rec(good, 2560, 2560, 1, 1, 0.5, 1.0), rec(kblock, 2560, 640, 64, 1, 0.1, 1.0)};
  std::vector<std::string> skipped;
  const auto ws = select_winners(rs, Objective::kTime, "cold", true, &skipped);
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].entry.variant, good);
  EXPECT_EQ(ws[0].evaluated, 1u);
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped[0].find(rows7), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[0].find("rows=7 outside its domain"), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[1].find("not an i2s_gemv variant"), std::string::npos) << skipped[1];
  EXPECT_NE(skipped[2].find("K=640 % 512 != 0"), std::string::npos) << skipped[2];
  EXPECT_EQ(unrunnable_variant(rs[2]), "");
}

class DispatchFromDb : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("TRITUNE_VARIANT");
    set_dispatch_table({});
  }
};

TEST_F(DispatchFromDb, RuntimePicksTheRecordedWinnerAndFallsBackToTheDefault) {
  const std::string dir = scratch_dir("dispatch");
  const TuningDb db = TuningDb::open_dir(dir, current_fingerprint());
  const std::string win = gemv_point("1", "8"), lose = gemv_point("1", "16");
  db.append(rec(lose, 2560, 2560, 1, 2, 0.8, 1.0));
  db.append(rec(win, 2560, 2560, 1, 2, 0.4, 1.0));
  {  // a corrupt line does not hide the good ones
    std::FILE* f = std::fopen(db.path().c_str(), "a");
    std::fputs("{\"broken\n", f);
    std::fclose(f);
  }
  {  // nor does a record of a variant this build cannot run, even the fastest one
    const size_t r = win.find("_r1_");
    ASSERT_NE(r, std::string::npos);
    db.append(rec(win.substr(0, r) + "_r7_" + win.substr(r + 4), 2560, 2560, 1, 2, 0.1, 1.0));
  }
  std::vector<std::string> warnings;
  const auto entries = load_dispatch_entries(dir, Objective::kTime, &warnings);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].variant, win);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("which this build cannot run"), std::string::npos) << warnings[1];

  install_tuned_dispatch(dir);
  std::string why;
  EXPECT_EQ(lookup_variant("i2s", 2560, 2560, 1, 2, &why), win);
  EXPECT_NE(why.find("tuned"), std::string::npos);
  const std::string def = default_variant("i2s", "gemv", selected_isa()).name;
  EXPECT_EQ(lookup_variant("i2s", 2560, 2560, 1, 1, &why), def) << "untuned thread count";
  EXPECT_EQ(lookup_variant("i2s", 640, 2560, 1, 2, &why), def) << "untuned shape";
  EXPECT_NE(why.find("default"), std::string::npos);
  // Forced variant for A/B runs.
  setenv("TRITUNE_VARIANT", lose.c_str(), 1);
  EXPECT_EQ(lookup_variant("i2s", 2560, 2560, 1, 2, &why), lose);
}

TEST_F(DispatchFromDb, NoDatabaseMeansDefaultsAndAForeignOneIsRefused) {
  const std::string dir = scratch_dir("dispatch-none");
  EXPECT_TRUE(load_dispatch_entries(dir, Objective::kTime).empty());
  // A foreign database copied under this CPU's file name is refused, not used.
  Fingerprint other = current_fingerprint();
  other.kernel_hash = "not-this-build";
  {
    const TuningDb foreign = TuningDb::open_dir(dir + "/x", other);
    foreign.append(rec(gemv_point("1", "8"), 2560, 2560, 1, 1, 0.1, 1.0));
    ASSERT_EQ(
        std::rename(foreign.path().c_str(), TuningDb::path_in(dir, current_fingerprint()).c_str()),
        0);
  }
  EXPECT_THROW(load_dispatch_entries(dir, Objective::kTime), Error);
  install_tuned_dispatch(dir);  // the runtime keeps running the defaults, with a message
  EXPECT_EQ(lookup_variant("i2s", 2560, 2560, 1, 1),
            default_variant("i2s", "gemv", selected_isa()).name);
}

}  // namespace
}  // namespace tritune
