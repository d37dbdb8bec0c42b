#include "tuner/database.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "kernels/error.h"
#include "synthetic.h"

namespace tritune {
namespace {

using testing::scratch_dir;
using testing::test_fingerprint;

Record sample_record(int i, size_t samples = 5) {
  Record r;
  r.task = {"i2_s", "i2s", "gemv", 2560, 6912, 1, 2, "cold"};
  r.variant = "i2s_gemv_r" + std::to_string(i) + "__avx2";
  r.params = {{"rows", std::to_string(i)}, {"accum", "vnni"}};
  for (size_t s = 0; s < samples; ++s) {
    r.m.time_s.push_back(1e-4 * (1 + 0.01 * (double)s));
    r.m.baseline_time_s.push_back(2e-4);
  }
  r.m.baseline_variant = "i2s_gemv_default__avx2";
  r.m.energy_j = {3e-5, 3.1e-5};
  r.m.baseline_energy_j = {6e-5};
  r.m.energy_source = "model";
  r.m.compile_s = 0.25;
  r.value = 1e-4;
  r.baseline_value = 2e-4;
  r.strategy = "grid";
  r.unix_time = 1700000000 + i;
  return r;
}

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count_lines(const std::string& p) {
  const std::string s = read_file(p);
  return (int)std::count(s.begin(), s.end(), '\n');
}

TEST(TuningDb, RoundTripsEveryField) {
  const std::string dir = scratch_dir("db-roundtrip") + "/nested/dir";
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  EXPECT_NE(db.path().find(test_fingerprint().id()), std::string::npos);
  Record a = sample_record(4);
  Record b = sample_record(8);
  b.m = Measurement();
  b.m.status = status::kCrash;
  b.m.reason = "child killed by signal 11 (Segmentation fault)";
  b.value = INFINITY;
  db.append(a);
  db.append(b);
  const DbLoad load = TuningDb::open_dir(dir, test_fingerprint()).load();
  EXPECT_TRUE(load.warnings.empty());
  ASSERT_EQ(load.records.size(), 2u);
  const Record& x = load.records[0];
  EXPECT_EQ(x.key(), a.key());
  EXPECT_EQ(x.params, a.params);
  EXPECT_EQ(x.m.time_s, a.m.time_s);
  EXPECT_EQ(x.m.baseline_time_s, a.m.baseline_time_s);
  EXPECT_EQ(x.m.energy_j, a.m.energy_j);
  EXPECT_EQ(x.m.energy_source, "model");
  EXPECT_EQ(x.m.baseline_variant, a.m.baseline_variant);
  EXPECT_NEAR(x.score(), 0.51, 1e-12);  // median of the pair ratios 0.50 .. 0.52
  EXPECT_EQ(x.task.threads, 2);
  EXPECT_EQ(x.task.cache, "cold");
  const Record& y = load.records[1];
  EXPECT_EQ(y.m.status, status::kCrash);
  EXPECT_EQ(y.m.reason, b.m.reason);
  EXPECT_TRUE(std::isinf(y.value));
  EXPECT_TRUE(std::isinf(y.score()));
}

TEST(TuningDb, ScoresArePairedRatiosSoDriftAndPreemptionCancel) {
  // Candidate 2x faster; the machine slows 5x for three pairs (both members of the pair see it)
  // and one baseline sample is preempted. The ratio of medians is off, the paired median is not.
  const std::vector<double> base = {10, 50, 50, 50, 10, 900, 10};
  const std::vector<double> cand = {5, 25, 25, 25, 5, 5, 5};
  EXPECT_DOUBLE_EQ(paired_ratio(cand, base), 0.5);
  EXPECT_NE(median(cand) / median(base), 0.5);
  EXPECT_TRUE(std::isinf(paired_ratio({}, base)));
  EXPECT_DOUBLE_EQ(paired_ratio({1, 2, 3}, {2, 4}), 2.0 / 3.0);  // unpaired: ratio of medians
}

TEST(TuningDb, CorruptAndTruncatedLinesAreReportedWithLineNumbersAndSkipped) {
  const std::string dir = scratch_dir("db-corrupt");
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  db.append(sample_record(1));
  {
    std::ofstream out(db.path(), std::ios::app);
    out << "{\"variant\": \"garbage\", this is not json}\n";  // line 3
    out << "{\"variant\": \"x\"}\n";                          // line 4: valid JSON, no fields
  }
  db.append(sample_record(2));  // line 5
  {
    std::ofstream out(db.path(), std::ios::app);
    out << json::dump(sample_record(3).to_json()).substr(0, 80);  // line 6: killed mid-write
  }
  DbLoad load = db.load();
  ASSERT_EQ(load.records.size(), 2u);
  EXPECT_EQ(load.records[1].variant, sample_record(2).variant);
  ASSERT_EQ(load.warnings.size(), 3u);
  EXPECT_NE(load.warnings[0].find(":3: corrupt line"), std::string::npos) << load.warnings[0];
  EXPECT_NE(load.warnings[1].find(":4: corrupt line"), std::string::npos) << load.warnings[1];
  EXPECT_NE(load.warnings[2].find(":6: truncated last line"), std::string::npos)
      << load.warnings[2];
  // The next append starts a fresh line: the fragment stays one bad line, the record is good.
  db.append(sample_record(4));
  load = db.load();
  ASSERT_EQ(load.records.size(), 3u);
  EXPECT_EQ(load.records[2].variant, sample_record(4).variant);
  EXPECT_EQ(load.warnings.size(), 3u);
  EXPECT_NE(load.warnings[2].find(":6: corrupt line"), std::string::npos) << load.warnings[2];
}

TEST(TuningDb, ASuccessWithoutTimingSamplesIsSkippedSoItIsMeasuredAgain) {
  // What a run with --reps 0 used to append: status ok, no samples, value null. Resumed, it
  // would have counted as a measured candidate scoring +inf, for good.
  const std::string dir = scratch_dir("db-nosamples");
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  Record empty = sample_record(1, 0);
  empty.value = INFINITY;
  db.append(empty);
  db.append(sample_record(2));
  const DbLoad load = db.load();
  ASSERT_EQ(load.records.size(), 1u);
  EXPECT_EQ(load.records[0].variant, sample_record(2).variant);
  ASSERT_EQ(load.warnings.size(), 1u);
  EXPECT_NE(load.warnings[0].find(":2: corrupt line (tuning record: status ok without timing"),
            std::string::npos)
      << load.warnings[0];
  // A shape beyond what the tuner measures (a corrupted n) is skipped too: verifying it
  // allocated until std::bad_alloc.
  Record huge = sample_record(4);
  huge.task.n = 99999999999;
  db.append(huge);
  EXPECT_EQ(db.load().records.size(), 1u);
  // A failed candidate has no samples either, and stays a record.
  Record crash = sample_record(3, 0);
  crash.m.status = status::kCrash;
  db.append(crash);
  EXPECT_EQ(db.load().records.size(), 2u);
  EXPECT_EQ(db.load().warnings.size(), 2u);
}

// The bounds a record is read within are the tuner's own: N and K up to 2^20 (kMaxShapeDim),
// up to 4096 tokens and 256 threads (the kernels' thread limit). The largest values are read,
// one more is refused.
TEST(TuningDb, RecordBoundsAreInclusive) {
  auto read_with = [](const char* key, int64_t v) {
    json::Value j = sample_record(1).to_json();
    j.set(key, v);
    return Record::from_json(j);
  };
  EXPECT_EQ(read_with("threads", 256).task.threads, 256);
  EXPECT_THROW(read_with("threads", 257), Error);
  EXPECT_EQ(read_with("tokens", 4096).task.tokens, 4096);
  EXPECT_THROW(read_with("tokens", 4097), Error);
  EXPECT_EQ(read_with("n", int64_t(1) << 20).task.n, int64_t(1) << 20);
  EXPECT_THROW(read_with("n", (int64_t(1) << 20) + 1), Error);
  EXPECT_EQ(read_with("k", int64_t(1) << 20).task.k, int64_t(1) << 20);
  EXPECT_THROW(read_with("k", (int64_t(1) << 20) + 1), Error);
  EXPECT_EQ(read_with("threads", 1).task.threads, 1);
  EXPECT_THROW(read_with("threads", 0), Error);
}

// The file of a fingerprint is named after the CPU's brand string (the second '|' field of the
// CPU text), lowercased with runs of other characters as one '-', then the fingerprint id.
TEST(TuningDb, FileNamesCarryTheCpuBrandAndTheId) {
  const Fingerprint fp = test_fingerprint("TestVendor|Test CPU 9000|f1m2");
  EXPECT_EQ(fp.file_stem(), "test-cpu-9000-" + fp.id());
  EXPECT_EQ(TuningDb::path_in("/db", fp), "/db/test-cpu-9000-" + fp.id() + ".jsonl");
  const Fingerprint amd = test_fingerprint("AuthenticAMD|AMD EPYC 9B45 (128-Core)|f26m2s1");
  EXPECT_EQ(amd.file_stem(), "amd-epyc-9b45-128-core-" + amd.id());
  const Fingerprint none = test_fingerprint("no separators");
  EXPECT_EQ(none.file_stem(), "cpu-" + none.id());
}

TEST(TuningDb, RefusesAnotherFingerprintOrKernelHash) {
  const std::string dir = scratch_dir("db-foreign");
  const Fingerprint mine = test_fingerprint();
  const TuningDb db = TuningDb::open_dir(dir, mine);
  db.append(sample_record(1));
  Fingerprint other_cpu = test_fingerprint("OtherVendor|Other CPU|f9m9");
  Fingerprint other_hash = mine;
  other_hash.kernel_hash = "fedcba9876543210";
  // A file copied from another machine, or kept across a generator change.
  for (const Fingerprint& f : {other_cpu, other_hash}) {
    try {
      TuningDb::open_file(db.path(), f);
      FAIL() << "accepted a foreign database";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("another fingerprint"), std::string::npos) << m;
      EXPECT_NE(m.find(f.cpu != mine.cpu ? "cpu" : "kernel_hash"), std::string::npos) << m;
      EXPECT_NE(m.find(db.path()), std::string::npos) << m;
    }
  }
  // In a directory each fingerprint has its own file: no mixing.
  EXPECT_NE(TuningDb::path_in(dir, other_hash), db.path());
  EXPECT_TRUE(TuningDb::open_dir(dir, other_hash).load().records.empty());
  EXPECT_EQ(TuningDb::open_dir(dir, mine).load().records.size(), 1u);
}

TEST(TuningDb, RefusesAFileThatIsNotATuningDatabase) {
  const std::string dir = scratch_dir("db-notdb");
  for (const char* content : {"hello world\n", "{\"some\": \"json\"}\n", "\x01\x02\x03"}) {
    const std::string p = dir + "/x.jsonl";
    std::ofstream(p) << content;
    EXPECT_THROW(TuningDb::open_file(p, test_fingerprint()), Error) << content;
  }
}

TEST(TuningDb, TwoProcessesAppendingConcurrentlyDoNotCorruptIt) {
  const std::string dir = scratch_dir("db-concurrent");
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  constexpr int kPerChild = 150;
  pid_t kids[2];
  for (int c = 0; c < 2; ++c) {
    kids[c] = fork();
    ASSERT_GE(kids[c], 0);
    if (kids[c] == 0) {
      const TuningDb mine = TuningDb::open_dir(dir, test_fingerprint());
      for (int i = 0; i < kPerChild; ++i) mine.append(sample_record(c * 1000 + i, 400));
      _exit(0);
    }
  }
  for (pid_t k : kids) {
    int st = 0;
    ASSERT_EQ(waitpid(k, &st, 0), k);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  const DbLoad load = db.load();
  EXPECT_TRUE(load.warnings.empty()) << load.warnings[0];
  ASSERT_EQ(load.records.size(), 2u * kPerChild);
  std::set<std::string> names;
  for (const auto& r : load.records) names.insert(r.variant);
  EXPECT_EQ(names.size(), 2u * kPerChild);
  EXPECT_EQ(count_lines(db.path()), 1 + 2 * kPerChild);
}

TEST(TuningDb, SurvivesAWriterKilledWithSigkill) {
  const std::string dir = scratch_dir("db-kill");
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t kid = fork();
  ASSERT_GE(kid, 0);
  if (kid == 0) {
    close(ready[0]);
    // Big lines (~300 KB) so the kill is likely to land while one is being written.
    for (int i = 0;; ++i) {
      db.append(sample_record(i, 20000));
      if (i == 3) {
        const char c = 1;
        if (write(ready[1], &c, 1) != 1) _exit(2);
      }
    }
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  usleep(20000);
  ASSERT_EQ(kill(kid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(kid, &st, 0), kid);
  ASSERT_TRUE(WIFSIGNALED(st));

  DbLoad load = db.load();
  EXPECT_GE(load.records.size(), 4u);
  EXPECT_LE(load.warnings.size(), 1u) << "at most the last line may be cut";
  for (size_t i = 0; i < load.records.size(); ++i) {
    EXPECT_EQ(load.records[i].variant, sample_record((int)i).variant) << "records in order";
  }
  // The database stays usable: the next append is a clean line.
  const size_t before = load.records.size();
  db.append(sample_record(99999));
  load = db.load();
  ASSERT_EQ(load.records.size(), before + 1);
  EXPECT_EQ(load.records.back().variant, sample_record(99999).variant);
}

}  // namespace
}  // namespace tritune
