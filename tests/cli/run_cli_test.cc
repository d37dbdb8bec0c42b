// The model subcommands end to end through the built `tritune` binary on a tiny synthetic
// GGUF written here: validate passes and says so in JSON, run is deterministic per seed and
// writes --logits-out, ppl and bench e2e run, bad input exits non-zero with a message.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/json.h"
#include "kernels/thread_pool.h"
#include "model/gguf.h"
#include "model/synthetic.h"
#include "tests/cli/cli_util.h"

namespace tritune {
namespace {

using Result = testing::CliResult;

class RunCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TRITUNE_TEST_TMP");
    if (tmp) mkdir(tmp, 0755);  // may not exist yet
    dir_ = std::string(tmp ? tmp : "/tmp") + "/run_cli";
    mkdir(dir_.c_str(), 0755);
    bin_ = testing::cli_binary();
    SyntheticOptions o;
    o.shape = find_shape("tiny");
    o.embd_type = 8;  // Q8_0 embedding and head
    // ctest runs each test as its own process, in parallel: one model file per process, or two
    // writers collide on the same temporary file.
    dir_ += "/" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0755);
    model_ = dir_ + "/tiny_q8.gguf";
    write_synthetic_model(o, model_);
    std::ofstream(dir_ + "/text.txt") << "The quick brown fox jumps over the lazy dog. "
                                         "It was the best of times, it was the worst of times.";
  }
  void SetUp() override {
    if (!testing::cli_binary_exists()) {
      GTEST_SKIP() << "tritune binary not built at " << bin_ << " (build the 'tritune' target)";
    }
  }
  static Result run(const std::string& args) { return testing::run_cli(args); }
  static std::string dir_, bin_, model_;
};
std::string RunCli::dir_, RunCli::bin_, RunCli::model_;

// Test-side statistics, written from their definitions (not kernels/stats.h): the median of a
// sample (the mean of the middle two for an even count) and the nearest-rank quantile, index
// round(q * (n - 1)) of the sorted sample.
double sample_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double nearest_rank(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[(size_t)std::lround(q * (double)(v.size() - 1))];
}
std::vector<double> numbers_of(const json::Value& a) {
  std::vector<double> v;
  for (size_t i = 0; i < a.size(); ++i) v.push_back(a[i].as_double());
  return v;
}
// The output line that contains `what` ("" when there is none).
std::string line_with(const std::string& out, const std::string& what) {
  const size_t at = out.find(what);
  if (at == std::string::npos) return "";
  const size_t from = out.rfind('\n', at), to = out.find('\n', at);
  return out.substr(
      from == std::string::npos ? 0 : from + 1,
      (to == std::string::npos ? out.size() : to) - (from == std::string::npos ? 0 : from + 1));
}
// The object `bench e2e --json` prints (the notes on stderr are merged into the output).
json::Value e2e_json(const std::string& out) {
  const size_t at = out.find("{\"model\": ");
  if (at == std::string::npos) return json::Value();
  return json::parse(out.substr(at, out.find('\n', at) - at), "bench e2e --json");
}

TEST_F(RunCli, ValidatePassesWithJson) {
  const Result r = run("validate -m " + model_ + " -n 48 -t 2 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"pass\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"linear_mismatches\": 0"), std::string::npos) << r.out;
}

TEST_F(RunCli, ValidateFailsLoudlyBeyondTolerance) {
  // A bar no float path meets: logits equal to the last bit (the vectorized kernel path and the
  // scalar reference sum in different orders).
  Result r = run("validate -m " + model_ + " -n 16 -t 1 --tol 0");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("FAIL: with identical quantized inputs the logits still differ"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("validate: FAILED"), std::string::npos) << r.out;
  // Bars that are not bars are refused before any work.
  for (const std::string bad : {"--min-top1 1.01", "--min-top1 -1", "--max-ppl-diff -0.1",
                                "--tol -1", "--min-top1 nan"}) {
    r = run("validate -m " + model_ + " -n 16 -t 1 " + bad);
    EXPECT_EQ(r.status, 1) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find("tritune validate: error: " + bad.substr(0, bad.find(' '))),
              std::string::npos)
        << bad << "\n" << r.out;
  }
}

TEST_F(RunCli, RunIsDeterministicPerSeedAndWritesLogits) {
  const std::string logits = dir_ + "/logits.f32";
  const std::string common = "run -m " + model_ + " -p \"Hello there\" -n 6 -t 1 --temp 1.0 ";
  const Result a = run(common + "--seed 5 --logits-out " + logits);
  const Result b = run(common + "--seed 5");
  ASSERT_EQ(a.status, 0) << a.out;
  ASSERT_EQ(b.status, 0) << b.out;
  // The generated text is the first line of stdout (stats go to stderr, merged here).
  EXPECT_EQ(a.out.substr(0, a.out.find('\n')), b.out.substr(0, b.out.find('\n')));
  EXPECT_NE(a.out.find("t/s"), std::string::npos) << a.out;
  struct stat st;
  ASSERT_EQ(stat(logits.c_str(), &st), 0);
  // Every evaluated position: the prompt (BOS + a few tokens) and 5 decoded steps, vocab 320.
  EXPECT_EQ(st.st_size % (320 * 4), 0);
  EXPECT_GE(st.st_size / (320 * 4), 5 + 3);
}

TEST_F(RunCli, EmbdTypeReencodesTheHeadAtLoad) {
  // validate reports what the re-encoding costs next to its usual checks, which still pass.
  Result r = run("validate -m " + model_ + " -n 24 -t 2 --embd-type q6_k --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string js = r.out.substr(r.out.find('{'));
  const json::Value d = json::parse(js.substr(0, js.rfind('}') + 1), "validate --json");
  EXPECT_TRUE(d.at("pass").as_bool());
  const json::Value& e = d.at("embedding");
  EXPECT_EQ(e.at("stored").as_string(), "Q8_0");
  EXPECT_EQ(e.at("encoded").as_string(), "Q6_K");
  EXPECT_EQ(e.at("encoded_bytes").as_double(), 320 * 210);  // tiny: vocab 320, hidden 256
  EXPECT_EQ(e.at("stored_bytes").as_double(), 320 * 8 * 34);
  EXPECT_GT(e.at("max_abs_diff").as_double(), 0.0);
  EXPECT_GE(e.at("top1_agreement").as_double(), 0.5);
  EXPECT_LE(e.at("top1_agreement").as_double(), 1.0);
  EXPECT_NE(r.out.find("note: token_embd.weight: Q8_0 -> Q6_K at load"), std::string::npos)
      << r.out;
  r = run("validate -m " + model_ + " -n 8 -t 1 --embd-type f16");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Q8_0 -> F16 (head"), std::string::npos) << r.out;
  // run, ppl and bench e2e take it too.
  r = run("run -m " + model_ + " -p Hello -n 3 -t 2 --temp 0 --embd-type q6_k");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Q8_0 -> Q6_K at load"), std::string::npos) << r.out;
  r = run("ppl -m " + model_ + " -f " + dir_ + "/text.txt --ctx 16 -t 1 --embd-type f32 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Q8_0 -> F32 at load"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ +
          " -p 0 -n 2 -r 1 -t 1 --no-roofline --no-energy "
          "--embd-type q6_k --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"tg_tps_mean\":"), std::string::npos) << r.out;
  // The JSON says what ran: the head as re-encoded, and the layers' kernels.
  EXPECT_NE(r.out.find("\"head_type\": \"Q6_K\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"kernels\": \"attn_q i2_s"), std::string::npos) << r.out;
  // A HF directory: its BF16 head re-encoded; the file size is the directory's safetensors.
  const std::string hf = dir_ + "/tiny_hf";
  r = run("make-model --shape tiny --format safetensors -o " + hf);
  ASSERT_EQ(r.status, 0) << r.out;
  r = run("bench e2e -m " + hf +
          " -p 0 -n 2 -r 1 -t 1 --no-roofline --no-energy "
          "--embd-type q8_0 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("model.embed_tokens.weight: BF16 -> Q8_0 at load"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("note: the output head"), std::string::npos) << r.out;
  struct stat st;
  ASSERT_EQ(stat((hf + "/model.safetensors").c_str(), &st), 0);
  EXPECT_NE(r.out.find("\"file_bytes\": " + std::to_string(st.st_size) + ","), std::string::npos)
      << r.out;
  // Without --embd-type, the BF16 head's share of a token's bytes and the option are named.
  r = run("run -m " + hf + " -p Hello -n 1 -t 1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("note: the output head (model.embed_tokens.weight, BF16) streams 0.2 MB"),
            std::string::npos)
      << r.out;
  // The same type as stored: nothing to do, no note.
  r = run("run -m " + model_ + " -p Hello -n 1 -t 1 --embd-type q8_0");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("at load"), std::string::npos) << r.out;
  // Unknown types are refused with the list.
  r = run("run -m " + model_ + " -n 1 --embd-type q5_k");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unknown embedding type 'q5_k'"), std::string::npos) << r.out;
}

// The lines of `out` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& out, const std::string& prefix) {
  std::vector<std::string> v;
  size_t at = 0;
  while (at < out.size()) {
    const size_t end = out.find('\n', at);
    const std::string line =
        out.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (line.rfind(prefix, 0) == 0) v.push_back(line);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return v;
}

TEST_F(RunCli, ChatKeepsTheConversationInTheCache) {
  const std::string in = dir_ + "/chat_in.txt";
  std::ofstream(in) << "Hello there\nHow are you?\n\n/reset\nHello there\n";
  const Result r = run("chat -m " + model_ + " -n 5 -t 2 --temp 0 < " + in);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto stats = lines_starting(r.out, "[prompt ");
  ASSERT_EQ(stats.size(), 3u) << r.out;  // the empty line is skipped
  long p[3], cached[3], fed[3];
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(std::sscanf(stats[(size_t)i].c_str(), "[prompt %ld tokens, %ld from the cache, %ld",
                          &p[i], &cached[i], &fed[i]),
              3)
        << stats[(size_t)i];
    EXPECT_EQ(p[i], cached[i] + fed[i]);
  }
  EXPECT_EQ(cached[0], 0);
  // Turn 2 reuses turn 1: its prompt and the reply tokens fed back (all but the last of 5).
  EXPECT_EQ(cached[1], p[0] + 4) << stats[1];
  EXPECT_EQ(cached[2], 0);  // after /reset
  EXPECT_EQ(p[2], p[0]);
  EXPECT_NE(r.out.find("[conversation reset]"), std::string::npos);
  // Greedy: the first reply is what `run --chat` generates, and /reset brings it back.
  const Result one = run("run -m " + model_ + " --chat -p \"Hello there\" -n 5 -t 1 --temp 0");
  ASSERT_EQ(one.status, 0) << one.out;
  // The template's special tokens are not printed, neither in the prompt nor in a reply.
  EXPECT_EQ(one.out.find("<|"), std::string::npos) << one.out;
  EXPECT_EQ(r.out.find("<|"), std::string::npos) << r.out;
  const Result plain = run("run -m " + model_ + " -p \"Hello there\" -n 0");
  EXPECT_EQ(plain.out.rfind("Hello there\n", 0), 0u) << plain.out;  // no <|begin_of_text|>
  const std::string first_reply = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(first_reply.empty()) << r.out;
  const std::string run_line = one.out.substr(0, one.out.find('\n'));
  EXPECT_EQ(run_line.substr(run_line.size() - first_reply.size()), first_reply) << one.out;
  EXPECT_NE(r.out.find(first_reply + "\n[prompt " + std::to_string(p[0]) + " tokens, 0 from"),
            std::string::npos)
      << r.out;
  // A turn that cannot fit is refused with the fix, the chat goes on, and the exit status says
  // that not every message was answered.
  const Result full = run("chat -m " + model_ + " -n 5 --ctx 24 --temp 0 < " + in);
  EXPECT_EQ(full.status, 1) << full.out;
  EXPECT_NE(full.out.find("exceed the context of 24 positions: /reset"), std::string::npos)
      << full.out;
  EXPECT_NE(full.out.find("message(s) not answered"), std::string::npos) << full.out;
  // CRLF input: "/exit\r" ends the chat (it used to be sent to the model as a message).
  const std::string crlf = dir_ + "/chat_crlf.txt";
  std::ofstream(crlf) << "Hello there\r\n /exit \r\nnever answered\r\n";
  const Result ended = run("chat -m " + model_ + " -n 3 --temp 0 < " + crlf);
  EXPECT_EQ(ended.status, 0) << ended.out;
  EXPECT_EQ(lines_starting(ended.out, "[prompt ").size(), 1u) << ended.out;
  // A system message that leaves no room for a reply is refused before the first turn.
  const Result sys = run("chat -m " + model_ + " -n 5 --ctx 24 --system \"" +
                         std::string(60, 'a') + " b c d e f g h i j k l m n o p\" < " + in);
  EXPECT_EQ(sys.status, 1) << sys.out;
  EXPECT_NE(sys.out.find("--system takes"), std::string::npos) << sys.out;
  // A standard input that cannot be read is an error, not the end of the chat.
  const Result unreadable = run("chat -m " + model_ + " -n 3 < " + dir_);
  EXPECT_EQ(unreadable.status, 1) << unreadable.out;
  EXPECT_NE(unreadable.out.find("reading the standard input failed"), std::string::npos)
      << unreadable.out;
  const Result bad = run("chat -m " + model_ + " -n 0 < " + in);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("-n 0: must be in 1.."), std::string::npos) << bad.out;
}

TEST_F(RunCli, PerplexityAndBenchRun) {
  Result r = run("ppl -m " + model_ + " -f " + dir_ + "/text.txt --ctx 16 --stride 8 -t 2 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"ppl\":"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("not scored"), std::string::npos) << r.out;  // overlapping windows
  // Windows end to end leave each window's first token unscored: said, not silent.
  r = run("ppl -m " + model_ + " -f " + dir_ + "/text.txt --ctx 8 --stride 8 -t 1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tokens not scored: a window's first token"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 16 -n 4 -r 2 -t 1 --no-roofline --no-energy --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"tg_tps_mean\":"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 0 -n 3 -r 1 -t 1 --no-roofline --no-energy");  // tg only
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tg3"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 4 -n 0 -r 1 -t 1 --no-roofline --no-energy");  // pp only
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("pp4"), std::string::npos) << r.out;
  // Roofline probes around every repetition, and the per-stage profile.
  r = run("bench e2e -m " + model_ + " -p 8 -n 2 -r 2 -t 2 --no-energy --profile --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"tg_bound_ratio\": "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"tg_bound_ratio\": 0.0000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tg_inplace_bound_ratio\": "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"tg_inplace_bound_ratio\": 0.0000"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"inplace_gbs\": 0.000"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"pp_peak_fraction\": 0.0000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"attention\": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"profile\": {\"pp\": {\"tokens\": 16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tg_stage_weight_bytes\": {\"qkv\": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"pool_schedule\": \"ranges\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"head\": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"pool_tail_seconds_by_stage\": {\"embed\": "), std::string::npos) << r.out;
  // Paired tokens: as many as tgN has (32 by default, here 2), each against its own probes.
  EXPECT_NE(r.out.find("\"tg_paired_tokens\": 2,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tg_paired_bound_ratio\": "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"tg_paired_bound_ratio\": 0.0000"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"tg_paired_inplace_bound_ratio\": 0.0000"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 0 -n 3 -r 1 -t 1 --no-energy --paired 0 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"tg_paired_tokens\": 0,"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 0 -n 2 -r 1 -t 1 --no-energy --paired -1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--paired must be in 0..100000"), std::string::npos) << r.out;
  r = run("bench e2e -m " + model_ + " -p 0 -n 2 -r 1 -t 2 --no-energy");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("in-place read (same run)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("thread pool: 2 threads, ranges schedule"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reading its bytes in place: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("medians over 2 tokens, each timed between two probes"), std::string::npos)
      << r.out;
  r = run("bench e2e -m " + model_ + " -p 8 -n 2 -r 1 -t 1 --no-energy --no-roofline --profile");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("where the time goes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| gate+up"), std::string::npos) << r.out;
  // The weight-streaming stages get a tg rate (no percentage without the in-place probe).
  EXPECT_NE(r.out.find("tg GB/s (in place)"), std::string::npos) << r.out;
  // A profile row and its last two cells (tg wait, tg rate), between its last three '|'.
  struct ProfileRow {
    std::string row, wait, rate;
  };
  const auto profile_row = [&](const std::string& stage) {
    ProfileRow p;
    const size_t at = r.out.find(stage);
    if (at == std::string::npos) return p;
    p.row = r.out.substr(at, r.out.find('\n', at) - at);
    const size_t c5 = p.row.rfind('|', p.row.size() - 2), c4 = p.row.rfind('|', c5 - 1);
    p.rate = p.row.substr(c5 + 1, p.row.size() - c5 - 2);
    p.wait = p.row.substr(c4 + 1, c5 - c4 - 1);
    return p;
  };
  for (const std::string stage : {"| down", "| attention"}) {
    const ProfileRow p = profile_row(stage);
    const std::string &row = p.row, &rate = p.rate;
    ASSERT_FALSE(row.empty()) << r.out;
    ASSERT_EQ(std::count(row.begin(), row.end(), '|'), 6) << row;
    // One thread: no parallel loops, so no wait at their ends.
    EXPECT_EQ(p.wait.find('-'), 10u) << row;
    if (stage == "| down") {
      EXPECT_GT(std::atof(rate.c_str()), 0.0) << row;
      EXPECT_EQ(rate.find('%'), std::string::npos) << row;  // --no-roofline: no in-place read
    } else {
      EXPECT_EQ(rate.find_first_not_of(' '), std::string::npos) << row;  // streams no weights
    }
  }
  // Two threads: the wait at the loops' ends, per stage and in all (the JSON: above).
  r = run("bench e2e -m " + model_ + " -p 0 -n 2 -r 1 -t 2 --no-energy --no-roofline --profile");
  EXPECT_EQ(r.status, 0) << r.out;
  {
    const ProfileRow p = profile_row("| total");
    ASSERT_FALSE(p.row.empty()) << r.out;
    EXPECT_EQ(p.wait.find('-'), std::string::npos) << p.row;
    EXPECT_GE(std::atof(p.wait.c_str()), 0.0) << p.row;
  }
  EXPECT_NE(r.out.find("tg thread pool: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" parallel loops per token; threads waited "), std::string::npos) << r.out;
  // tg after a filled context (llama-bench's -d): the filling prompt is neither timed nor
  // profiled, and the bytes per token count the KV cache at the deeper context.
  r = run("bench e2e -m " + model_ + " -p 0 -n 2 -d 20 -r 2 -t 2 --no-roofline --no-energy");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("tg2 @ d20"), std::string::npos) << r.out;
  // Token i reads 20 + i + 1 rows: 21 and 22, 21.5 on average.
  EXPECT_NE(r.out.find("KV at context 21.5, the mean of the tg tokens"), std::string::npos)
      << r.out;
  r = run("bench e2e -m " + model_ +
          " -p 0 -n 2 -d 20 -r 2 -t 1 --no-roofline --no-energy --profile --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"depth\": 20,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tg\": {\"tokens\": 4,"), std::string::npos) << r.out;
  for (const char* bad : {"-p 4 -n 0 -d 5", "-p 0 -n 2 -d -1"}) {
    r = run("bench e2e -m " + model_ + " " + bad + " --no-roofline --no-energy");
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_TRUE(r.out.find("-d must be >= 0 and needs tg") != std::string::npos ||
                r.out.find("-d -1: must be in 0..") != std::string::npos)
        << r.out;
  }
}

// The figures `bench e2e` asks users to trust, recomputed from their definitions and the other
// fields of the same run. With -r 1 each median is its one repetition's figure.
TEST_F(RunCli, BenchE2eFiguresFollowFromTheirDefinitions) {
  const ModelShape& s = find_shape("tiny");
  const double head_dim = (double)(s.hidden / s.heads), kv_dim = head_dim * (double)s.kv_heads;
  // n x k of a layer's q, k, v, o, gate, up and down.
  const double layer_nk =
      2.0 * s.hidden * s.hidden + 2.0 * kv_dim * s.hidden + 3.0 * s.ffn * s.hidden;
  const double ops = 2.0 * (double)s.layers * layer_nk;  // a multiply and an add per weight
  Result r = run("bench e2e -m " + model_ + " -p 8 -n 4 -r 1 -t 1 --no-energy --paired 0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  json::Value j = e2e_json(r.out);
  ASSERT_TRUE(j.is_object()) << r.out;
  const auto num = [&](const char* k) { return j.at(k).as_double(); };
  // pp: linear-layer GOP/s and its fraction of the int8 peak (printed %.2f and %.4f).
  const double pp_gops = num("pp_tps_mean") * ops / 1e9;
  EXPECT_NEAR(num("pp_linear_gops"), pp_gops, 0.006 + 1e-5 * pp_gops) << r.out;
  ASSERT_GT(num("int8_peak_gops"), 0) << r.out;
  const double frac = pp_gops / num("int8_peak_gops");
  EXPECT_NEAR(num("pp_peak_fraction"), frac, 6e-5 + 1e-4 * frac) << r.out;
  // Bytes per generated token: 2-bit ternary weights, the Q8_0 head (34 bytes per 32 weights),
  // one Q8_0 embedding row, and the f16 K and V rows at the mean context of the tg tokens
  // (token i reads i + 1 rows: 2.5 on average over 4).
  const double row = (double)s.hidden / 32 * 34;
  const double kv_per_pos = 2.0 * (double)s.layers * kv_dim * 2;
  const double bytes =
      (double)s.layers * layer_nk * 2 / 8 + (double)s.vocab * row + row + 2.5 * kv_per_pos;
  EXPECT_EQ(num("bytes_per_token"), bytes) << r.out;
  // tg: time per token over the bound (bytes over the bandwidth, GB = 1e9 bytes).
  const double tg_s = 1.0 / num("tg_tps_mean");
  EXPECT_NEAR(num("tg_s_per_token"), tg_s, 6e-7) << r.out;
  ASSERT_GT(num("stream_gbs"), 0) << r.out;
  ASSERT_GT(num("inplace_gbs"), 0) << r.out;
  const double bound = bytes / (num("stream_gbs") * 1e9),
               inplace = bytes / (num("inplace_gbs") * 1e9);
  EXPECT_NEAR(num("tg_bound_s"), bound, 6e-7) << r.out;
  EXPECT_NEAR(num("tg_inplace_bound_s"), inplace, 6e-7) << r.out;
  EXPECT_NEAR(num("tg_bound_ratio"), tg_s / bound, 6e-5 + 1e-3 * tg_s / bound) << r.out;
  EXPECT_NEAR(num("tg_inplace_bound_ratio"), tg_s / inplace, 6e-5 + 1e-3 * tg_s / inplace) << r.out;
  // -d 20 adds 20 positions of K and V: 2 bytes per element with --kv f16, 4 with f32.
  for (const auto& [kv, elem] : {std::pair<std::string, double>{"f16", 2}, {"f32", 4}}) {
    double at[2] = {0, 0};
    for (int d : {0, 1}) {
      r = run("bench e2e -m " + model_ + " -p 0 -n 4 -r 1 -t 1 --no-roofline --no-energy --kv " +
              kv + (d ? " -d 20" : "") + " --json");
      ASSERT_EQ(r.status, 0) << r.out;
      j = e2e_json(r.out);
      ASSERT_TRUE(j.is_object()) << r.out;
      at[d] = j.at("bytes_per_token").as_double();
    }
    EXPECT_EQ(at[1] - at[0], 20 * 2.0 * (double)s.layers * kv_dim * elem) << kv;
  }
  // The text report: resident memory over the file size, and the ratios to the F16 copy.
  r = run("bench e2e -m " + model_ +
          " -p 8 -n 4 -r 1 -t 1 --no-roofline --no-energy --compare-f16");
  ASSERT_EQ(r.status, 0) << r.out;
  struct stat st;
  ASSERT_EQ(stat(model_.c_str(), &st), 0);
  double loaded = 0, running = 0, times = 0, file_mb = 0;
  const std::string mem = line_with(r.out, "resident memory");
  ASSERT_EQ(
      std::sscanf(mem.c_str(), "resident memory %lf MB after load, %lf MB running (%lfx the %lf",
                  &loaded, &running, &times, &file_mb),
      4)
      << mem;
  // running is printed to 0.1 MB: the ratio is known to 0.05 MB over the file.
  EXPECT_NEAR(times, running * 1e6 / (double)st.st_size, 0.05e6 / (double)st.st_size + 0.006)
      << mem;
  // A table row's t/s mean: its last cell, "mean ± sd".
  const auto tps = [&](const std::string& test, bool f16) {
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) {
      if (l.find(" " + test + " |") == std::string::npos) continue;
      if ((l.find("(as f16)") != std::string::npos) != f16) continue;
      const size_t last = l.rfind('|'), before = l.rfind('|', last - 1);
      return std::atof(l.substr(before + 1, last - before - 1).c_str());
    }
    return -1.0;
  };
  const double tg = tps("tg4", false), tg16 = tps("tg4", true), pp = tps("pp8", false),
               pp16 = tps("pp8", true);
  ASSERT_GT(tg, 0) << r.out;
  ASSERT_GT(tg16, 0) << r.out;
  ASSERT_GT(pp, 0) << r.out;
  ASSERT_GT(pp16, 0) << r.out;
  double tg_x = 0, pp_x = 0;
  const std::string vs = line_with(r.out, "vs f16 (same run)");
  ASSERT_EQ(std::sscanf(vs.c_str(), "vs f16 (same run) tg %lfx, pp %lfx", &tg_x, &pp_x), 2) << vs;
  EXPECT_NEAR(tg_x, tg / tg16, 0.006) << r.out;
  EXPECT_NEAR(pp_x, pp / pp16, 0.006) << r.out;
}

// The per-operation energy model is charged with all a token does: at the least every byte it
// reads at the tables' DRAM price (160 pJ per byte in both), so the estimated joules per token
// cannot be below bytes_per_token x 160 pJ. The linear layers alone were once all it was told
// of: the head and the KV cache, a third of the bytes here, were left out.
TEST_F(RunCli, BenchE2eModelEnergyCountsEveryByteATokenReads) {
  const Result r =
      testing::run_cli("bench e2e -m " + model_ + " -p 8 -n 4 -r 1 -t 1 --no-roofline --json",
                       "TRITUNE_ENERGY_BACKEND=model");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value j = e2e_json(r.out);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j.at("energy_source").as_string(), "model") << r.out;
  const double bytes = j.at("bytes_per_token").as_double();
  const double tg_j = j.at("tg_j_per_token").as_double();
  EXPECT_GE(tg_j, bytes * 160e-12 * (1 - 1e-5)) << r.out;
  // and not far above: the arithmetic of a tiny model costs a few percent of its memory traffic.
  EXPECT_LE(tg_j, bytes * 160e-12 * 1.2) << r.out;
  EXPECT_GT(j.at("pp_j_per_token").as_double(), 0) << r.out;
}

// `tritune info` names the JIT compiler module and whether it is there (TRITUNE_JIT_MODULE
// points elsewhere), in text and JSON.
TEST_F(RunCli, InfoReportsTheJitModule) {
  Result r = run("info --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"jit_module_present\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libtritune_jit"), std::string::npos) << r.out;
  // The CPUs this process may use (the child inherits the test's affinity mask).
  EXPECT_NE(r.out.find("\"available_cpus\": " + std::to_string(available_cpus()) + ","),
            std::string::npos)
      << r.out;
  r = run("info");
  EXPECT_NE(r.out.find("JIT"), std::string::npos) << r.out;
  setenv("TRITUNE_JIT_MODULE", "/nonexistent/jit.so", 1);  // inherited by run()'s child
  const Result missing = run("info");
  unsetenv("TRITUNE_JIT_MODULE");
  EXPECT_EQ(missing.status, 0) << missing.out;
  EXPECT_NE(missing.out.find("/nonexistent/jit.so (missing"), std::string::npos) << missing.out;
}

TEST_F(RunCli, BenchRoofline) {
  Result r = run("bench roofline -t 1,2 -r 2 --mib 16 --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"stream_gbs\": ["), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"threads\": 2"), std::string::npos) << r.out;
  r = run("bench roofline -r 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("-r"), std::string::npos) << r.out;
  r = run("bench roofline --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("drift"), std::string::npos) << r.out;
  // A buffer the last-level cache holds measures the cache: said on stderr.
  if (cpu_info().l3_bytes >= (int64_t(1) << 20)) {
    r = run("bench roofline -t 1 -r 1 --mib 1");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("note: --mib 1 MiB is below twice the last-level cache"),
              std::string::npos)
        << r.out;
  }
}

TEST_F(RunCli, BenchVariantsComparesAgainstTheDefault) {
  const std::string json = dir_ + "/variants.json";
  const std::string common =
      " --shape 64x512 --cache warm --reps 3 --min-sample-ms 0.2"
      " --stream-mib 8 -t 1";
  // Two legal points of the GEMV space on every ISA: grain and prefetch differ only.
  Result r =
      run("bench variants --variants i2s_gemv_r1_t1_u1_v128_g1_k0_avnni_p0_dshift__x86_64,"
          "i2s_gemv_r1_t1_u1_v128_g4_k0_avnni_p8_dshift__x86_64 --rounds 2 --json " +
          json + common);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("task i2_s gemv 64x512 t1 x1 warm"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stream read, 1 thread(s): median"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("%stream"), std::string::npos) << r.out;
  std::ifstream f(json);
  const std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(body.find("\"round\": 2"), std::string::npos) << body;
  EXPECT_NE(body.find("\"stream_GBps_probes\": ["), std::string::npos) << body;
  {
    // Per variant, over all rounds: weight GB/s at the median time, as a percentage of the
    // median stream probe. An i2_s 64x512 matrix is 2 bits per weight: 8192 bytes.
    const json::Value d = json::parse(body, json);
    EXPECT_EQ(d.at("weight_bytes").as_double(), 64.0 * 512 * 2 / 8);
    const double stream = sample_median(numbers_of(d.at("stream_GBps_probes")));
    for (const std::string v : {"i2s_gemv_r1_t1_u1_v128_g1_k0_avnni_p0_dshift__x86_64",
                                "i2s_gemv_r1_t1_u1_v128_g4_k0_avnni_p8_dshift__x86_64"}) {
      std::vector<double> ts;
      for (size_t i = 0; i < d.at("rows").size(); ++i) {
        if (d.at("rows")[i].at("variant").as_string() != v) continue;
        for (double t : numbers_of(d.at("rows")[i].at("time_s"))) ts.push_back(t);
      }
      ASSERT_FALSE(ts.empty()) << v;
      const double gbs = 64.0 * 512 * 2 / 8 / sample_median(ts) / 1e9;
      const std::string l = line_with(r.out.substr(r.out.find("variant (all rounds)")), v);
      double us = 0, got_gbs = 0, pct = 0;
      ASSERT_EQ(std::sscanf(l.c_str() + v.size(), "%lfus %lf %lf%%", &us, &got_gbs, &pct), 3) << l;
      EXPECT_NEAR(got_gbs, gbs, 0.006 + 1e-4 * gbs) << l;
      EXPECT_NEAR(pct, 100 * gbs / stream, 0.06 + 1e-4 * pct) << l;
    }
  }
  // A GEMM name for a GEMV task, an illegal point and bad arguments: non-zero, and say why.
  r = run("bench variants --variants i2s_gemm_r1_t2_u1_v128_g1_k0_avnni_p0_dshift__x86_64" +
          common);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("is not a i2s gemv variant"), std::string::npos) << r.out;
  r = run("bench variants --variants i2s_gemv_r1_t1_u8_v128_g1_k0_avnni_p0_dshift__x86_64" +
          common);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("is not a legal point"), std::string::npos) << r.out;
  r = run("bench variants --shape 64x512");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--variants is required"), std::string::npos) << r.out;
}

TEST_F(RunCli, BenchLayoutsComparesPartsInOneProcess) {
  const std::string json = dir_ + "/layouts.json";
  // 512 columns = 32 tiles: 1, 2 and 4 parts; a named variant on 2 parts.
  Result r =
      run("bench layouts --shape 64x512 --cold-mib 0 --rounds 4 -t 2 --configs 1,4:guided,"
          "i2s_gemv_r1_t1_u1_v128_g1_k0_avnni_p0_dshift__x86_64@2 --json " +
          json);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("i2_s gemv 64x512, 1 token(s), 2 thread(s): 1 copy"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(" @4 guided "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" @1 ranges "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("i2s_gemv_r1_t1_u1_v128_g1_k0_avnni_p0_dshift__x86_64 @2 ranges"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1.000x (1.000..1.000)"), std::string::npos) << r.out;  // the first
  std::ifstream f(json);
  const std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(body.find("\"parts\": 4"), std::string::npos) << body;
  EXPECT_NE(body.find("\"schedule\": \"guided\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"time_s\": ["), std::string::npos) << body;
  {
    // "vs first": per round, the first config's time over this config's (a speedup), the
    // median of those ratios and their nearest-rank quartiles.
    const json::Value d = json::parse(body, json);
    const json::Value& cfgs = d.at("configs");
    ASSERT_EQ(cfgs.size(), 3u);
    const std::vector<double> first = numbers_of(cfgs[0].at("time_s"));
    const char* labels[] = {" @1 ranges ", " @4 guided ", " @2 ranges"};
    for (size_t c = 0; c < 3; ++c) {
      const std::vector<double> t = numbers_of(cfgs[c].at("time_s"));
      ASSERT_EQ(t.size(), first.size());
      std::vector<double> ratio;
      for (size_t i = 0; i < t.size(); ++i) ratio.push_back(first[i] / t[i]);
      const std::string l = line_with(r.out, labels[c]);
      const size_t x = l.rfind("x (");
      ASSERT_NE(x, std::string::npos) << l;
      double med = 0, lo = 0, hi = 0;
      ASSERT_EQ(std::sscanf(l.c_str() + l.rfind(' ', x) + 1, "%lfx (%lf..%lf)", &med, &lo, &hi), 3)
          << l;
      EXPECT_NEAR(med, sample_median(ratio), 6e-4) << l;
      EXPECT_NEAR(lo, nearest_rank(ratio, 0.25), 6e-4) << l;
      EXPECT_NEAR(hi, nearest_rank(ratio, 0.75), 6e-4) << l;
    }
  }
  // Parts that do not divide K's tiles, a GEMM variant for a GEMV, bad numbers: say why.
  r = run("bench layouts --shape 64x512 --cold-mib 0 --configs 3");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("divides the 32 column tiles"), std::string::npos) << r.out;
  r = run("bench layouts --shape 64x512 --cold-mib 0 --configs 2:static");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("guided or ranges"), std::string::npos) << r.out;
  r =
      run("bench layouts --shape 64x512 --cold-mib 0 --configs "
          "i2s_gemm_r1_t2_u1_v128_g1_k0_avnni_p0_dshift__x86_64@1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("is not an i2s gemv variant"), std::string::npos) << r.out;
  r = run("bench layouts --shape 64x512 --rounds 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--rounds"), std::string::npos) << r.out;
}

// inspect --json: the file's tables and what it loaded as, machine-readable (the peer comparison
// in experiments/ reads a llama.cpp file's tensor bytes from it); make-model --arch bitnet
// writes llama.cpp's architecture name.
TEST_F(RunCli, InspectJsonDescribesTheFileAndTheModel) {
  const std::string path = dir_ + "/tiny_tq2_bitnet.gguf";
  Result r = run("make-model --shape tiny --format tq2_0 --arch bitnet -o " + path);
  ASSERT_EQ(r.status, 0) << r.out;
  r = run("inspect -m " + path + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value d = json::parse(r.out, "inspect --json");
  const json::Value& ft = d.at("file_tables");
  EXPECT_EQ(ft.at("format").as_string(), "gguf");
  EXPECT_EQ(ft.at("metadata").at("general.architecture").as_string(), "bitnet");
  EXPECT_EQ(ft.at("metadata").at("bitnet.block_count").as_int64(), 2);
  const json::Value& toks = ft.at("metadata").at("tokenizer.ggml.tokens");
  EXPECT_EQ(toks.at("count").as_int64(), 320);
  EXPECT_EQ(toks.at("items").size(), 6u);  // cut without --all
  const int64_t file_bytes = ft.at("bytes").as_int64();
  int64_t end = 0, linear = 0;
  for (const json::Value& t : ft.at("tensors").as_array()) {
    const int64_t off = t.at("offset").as_int64(), bytes = t.at("bytes").as_int64();
    EXPECT_GE(off, ft.at("data_offset").as_int64());
    end = std::max(end, off + bytes);
    if (t.at("type").as_string() == "TQ2_0") linear += bytes;
  }
  EXPECT_EQ(ft.at("tensors").size(), 24u);
  EXPECT_LE(end, file_bytes);
  // 2 blocks of q, o (256x256), k, v (128x256), gate, up, down (256x512 weights): TQ2_0 stores
  // 66 bytes per 256 weights.
  const int64_t per_block = 2 * 256 * 256 + 2 * 128 * 256 + 3 * 256 * 512;
  EXPECT_EQ(linear, 2 * per_block / 256 * 66);
  const json::Value& m = d.at("model");
  EXPECT_EQ(m.at("hparams").at("arch").as_string(), "bitnet");
  EXPECT_EQ(m.at("hparams").at("layers").as_int64(), 2);
  EXPECT_EQ(m.at("linear")[0].at("conversion").as_string(), "TQ2_0 -> i2_s");
  EXPECT_EQ(m.at("linear")[0].at("count").as_int64(), 14);
  // --all lists every element; --no-load leaves the model out.
  r = run("inspect -m " + path + " --json --all --no-load");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value all = json::parse(r.out, "inspect --json --all");
  EXPECT_EQ(all.at("file_tables").at("metadata").at("tokenizer.ggml.tokens").at("items").size(),
            320u);
  EXPECT_FALSE(all.contains("model"));
  r = run("make-model --shape tiny --format safetensors --arch bitnet -o " + dir_ + "/never_st");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("drop it for safetensors"), std::string::npos) << r.out;
  r = run("make-model --shape tiny --arch llama -o " + dir_ + "/never.gguf");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--arch 'llama' is not a BitNet architecture"), std::string::npos) << r.out;
}

// Metadata JSON has no spelling for: non-finite floats become strings, u64 beyond int64 a
// double; nested arrays keep their structure. The file is no model: --no-load prints the
// tables, a load fails with the file's name.
TEST_F(RunCli, InspectJsonSurvivesHostileMetadata) {
  const std::string path = dir_ + "/odd_metadata.gguf";
  {
    gguf::Writer w(path);
    w.set("general.architecture", gguf::Value::str("llama"));
    w.set("odd.nan", gguf::Value::f32(std::numeric_limits<float>::quiet_NaN()));
    w.set("odd.inf", gguf::Value::f64(-std::numeric_limits<double>::infinity()));
    w.set("odd.u64", gguf::Value::u64(UINT64_MAX));
    w.set("odd.i8", gguf::Value::i8(-5));
    w.set("odd.nested", gguf::Value::array(gguf::ValueType::kArray,
                                           {gguf::Value::i32s({1, 2}), gguf::Value::i32s({3})}));
    w.set("odd.quote", gguf::Value::str("a\"b\\c\n"));
    w.finish();
  }
  Result r = run("inspect -m " + path + " --json --no-load");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value d = json::parse(r.out, "inspect --json");
  const json::Value& md = d.at("file_tables").at("metadata");
  EXPECT_EQ(md.at("odd.nan").as_string(), "nan");
  EXPECT_EQ(md.at("odd.inf").as_string(), "-inf");
  EXPECT_DOUBLE_EQ(md.at("odd.u64").as_double(), 18446744073709551615.0);
  EXPECT_EQ(md.at("odd.i8").as_int64(), -5);
  EXPECT_EQ(md.at("odd.nested").at("type").as_string(), "array<array>");
  EXPECT_EQ(md.at("odd.nested").at("items")[0].at("items")[1].as_int64(), 2);
  EXPECT_EQ(md.at("odd.quote").as_string(), "a\"b\\c\n");
  EXPECT_EQ(d.at("file_tables").at("tensors").size(), 0u);
  r = run("inspect -m " + path + " --json");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("odd_metadata.gguf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'llama'"), std::string::npos) << r.out;
}

// Position counts are accepted up to and including the documented maximum 2^24 = 16777216
// (checked before the model loads, so a valid count gets as far as the missing file), and list
// options refuse a trailing comma (an item left out) instead of dropping it.
TEST_F(RunCli, PositionLimitIsInclusiveAndListsRefuseATrailingComma) {
  Result r = run("run -n 16777216 -m " + dir_ + "/missing.gguf");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("missing.gguf"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("must be in"), std::string::npos) << r.out;
  r = run("run -n 16777217 -m " + dir_ + "/missing.gguf");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("-n 16777217: must be in 0..16777216"), std::string::npos) << r.out;
  // --cache bogus would fail next: the list must be refused first.
  r = run("bench kernels --formats i2_s, --cache bogus");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--formats 'i2_s,'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--cache"), std::string::npos) << r.out;
}

// run --logits-out writes every evaluated position once: the prompt's (here 3 ids) and each
// decode step's but the last token's (it is sampled, never fed back): 3 + (4 - 1) rows.
TEST_F(RunCli, RunWritesOneLogitsRowPerEvaluatedPosition) {
  const std::string logits = dir_ + "/rows.f32";
  const Result r = run("run -m " + model_ + " --tokens 1,2,3 -n 4 -t 1 --temp 0 --no-stop " +
                       "--logits-out " + logits);
  ASSERT_EQ(r.status, 0) << r.out;
  struct stat st;
  ASSERT_EQ(stat(logits.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (3 + 3) * 320 * 4) << r.out;  // tiny: vocab 320, float32
  EXPECT_NE(r.out.find("logits     6 positions x 320 floats"), std::string::npos) << r.out;
}

// ppl --json: with overlapping windows every token after the first is scored once, and windows
// of 16 start every 8 tokens until one reaches the end: 1 for up to 16 tokens, then one more
// per 8 (rounded up).
TEST_F(RunCli, PerplexityJsonCountsFollowFromTheWindows) {
  const Result r =
      run("ppl -m " + model_ + " -f " + dir_ + "/text.txt --ctx 16 --stride 8 -t 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const size_t at = r.out.find("{\"ppl\"");
  ASSERT_NE(at, std::string::npos) << r.out;
  const json::Value d = json::parse(r.out.substr(at, r.out.find('\n', at) - at), "ppl --json");
  const int64_t n = d.at("tokens").as_int64();
  ASSERT_GT(n, 16) << r.out;  // more than one window
  EXPECT_EQ(d.at("scored").as_int64(), n - 1);
  EXPECT_EQ(d.at("windows").as_int64(), 1 + (n - 16 + 7) / 8);
  EXPECT_EQ(d.at("ctx").as_int64(), 16);
  EXPECT_EQ(d.at("path").as_string(), "kernel");
  EXPECT_NEAR(d.at("ppl").as_double(), std::exp(d.at("mean_nll").as_double()),
              1e-6 * d.at("ppl").as_double());
  // --logits-out: one row per scored position, once each, though the windows overlap.
  const std::string out = dir_ + "/ppl_logits.f32";
  const Result w = run("ppl -m " + model_ + " -f " + dir_ +
                       "/text.txt --ctx 16 --stride 8 -t 1 --logits-out " + out);
  ASSERT_EQ(w.status, 0) << w.out;
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ((int64_t)st.st_size, (n - 1) * find_shape("tiny").vocab * 4);
}

// --tokens: a list ending in a comma lost an id and is refused; --chat renders text, so it
// cannot go with ids either. Both before the model loads.
TEST_F(RunCli, TokensRefuseATrailingCommaAndChat) {
  Result r = run("run -m " + dir_ + "/missing.gguf --tokens 1,2, -n 1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--tokens '1,2,': ends with a comma"), std::string::npos) << r.out;
  r = run("run -m " + dir_ + "/missing.gguf --tokens 1,2 --chat -n 1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--tokens is the prompt as token ids: drop -p and --chat"),
            std::string::npos)
      << r.out;
}

// --version belongs to tritune itself: after a group name it is an unknown option (a usage
// error, status 2), like any other.
TEST_F(RunCli, VersionIsNotAGroupOption) {
  const Result r = run("bench --version");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("tritune bench: unknown option '--version'"), std::string::npos) << r.out;
}

// One message the context cannot hold is one message not answered: the exit status says so.
TEST_F(RunCli, ChatFailsWhenItsOnlyMessageCannotBeAnswered) {
  const std::string in = dir_ + "/chat_long.txt";
  std::ofstream(in) << std::string(200, 'x') << "\n";  // far more than 24 tokens
  const Result r = run("chat -m " + model_ + " -n 2 --ctx 24 --temp 0 < " + in);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("chat: 1 message(s) not answered"), std::string::npos) << r.out;
}

// general.file_type is llama.cpp's llama_ftype: MOSTLY_TQ1_0 = 36, MOSTLY_TQ2_0 = 37, and
// bitnet.cpp's MOSTLY_I2_S = 40; MOSTLY_F16 = 1, ALL_F32 = 0.
TEST_F(RunCli, MakeModelWritesLlamaCppFileTypes) {
  for (const auto& [fmt, want] : std::vector<std::pair<std::string, int64_t>>{
           {"i2_s", 40}, {"tq2_0", 37}, {"tq1_0", 36}, {"f16", 1}, {"f32", 0}}) {
    const std::string path = dir_ + "/ftype_" + fmt + ".gguf";
    Result r = run("make-model --shape tiny --layers 1 --format " + fmt + " -o " + path);
    ASSERT_EQ(r.status, 0) << r.out;
    r = run("inspect -m " + path + " --json --no-load");
    ASSERT_EQ(r.status, 0) << r.out;
    const json::Value d = json::parse(r.out, "inspect --json");
    EXPECT_EQ(d.at("file_tables").at("metadata").at("general.file_type").as_int64(), want) << fmt;
  }
}

// inspect --json on a safetensors file: offsets are from the start of the file, as for GGUF.
// By the format, the file opens with the header's length N (u64, little-endian), the header,
// then the data from 8 + N to the end, which the tensors fill.
TEST_F(RunCli, InspectJsonSafetensorsOffsetsAreFileOffsets) {
  const std::string hf = dir_ + "/inspect_hf";
  Result r = run("make-model --shape tiny --layers 1 --format safetensors -o " + hf);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string file = hf + "/model.safetensors";
  std::ifstream in(file, std::ios::binary);
  unsigned char len[8] = {};
  ASSERT_TRUE(in.read(reinterpret_cast<char*>(len), 8));
  int64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header * 256 + len[i];
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  r = run("inspect -m " + hf + " --json --no-load");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value d = json::parse(r.out, "inspect --json");
  const json::Value& ft = d.at("file_tables");
  EXPECT_EQ(ft.at("format").as_string(), "safetensors");
  EXPECT_EQ(ft.at("data_offset").as_int64(), 8 + header);
  EXPECT_EQ(ft.at("bytes").as_int64(), (int64_t)st.st_size);
  int64_t lo = INT64_MAX, hi = 0, total = 0;
  for (const json::Value& t : ft.at("tensors").as_array()) {
    lo = std::min(lo, t.at("offset").as_int64());
    hi = std::max(hi, t.at("offset").as_int64() + t.at("bytes").as_int64());
    total += t.at("bytes").as_int64();
  }
  EXPECT_EQ(lo, 8 + header);
  EXPECT_EQ(hi, (int64_t)st.st_size);
  EXPECT_EQ(total, (int64_t)st.st_size - 8 - header);  // packed end to end
}

TEST_F(RunCli, BadInputExitsNonZeroWithAMessage) {
  Result r = run("run -m " + dir_ + "/missing.gguf -n 2");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("missing.gguf"), std::string::npos) << r.out;
  r = run("validate -m " + model_ + " -n 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("-n"), std::string::npos) << r.out;
  r = run("run -m " + model_ + " --tokens 1,99999 -n 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("vocabulary"), std::string::npos) << r.out;
  r = run("ppl -m " + model_ + " -f " + dir_ + "/text.txt --ctx 8 --stride 9");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--stride"), std::string::npos) << r.out;
  r = run("run -m " + model_ + " --temp -1 -n 1");
  EXPECT_NE(r.status, 0);
  {  // an empty text, and one that is only BOS once tokenized: named, with what is needed
    std::ofstream(dir_ + "/empty.txt");
    r = run("ppl -m " + model_ + " -f " + dir_ + "/empty.txt");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.out.find("empty.txt' is empty"), std::string::npos) << r.out;
  }
  // Options are checked before the model loads: with a missing file, the option is what is named.
  for (const std::string& cmd : std::vector<std::string>{
           "run -n 1 --temp -1", "run -n -3", "run -n 1 --seed x", "run -n 1 --kv q9",
           "run -n 1 --path x", "run --ctx -5", "run --tokens 1,a", "chat --ctx -1", "chat -n 0",
           "chat --top-p 2", "validate -n 1", "validate --tol x", "validate --seed -1",
           "ppl -f " + dir_ + "/text.txt --stride x"}) {
    r = run(cmd + " -m " + dir_ + "/missing.gguf");
    EXPECT_NE(r.status, 0) << cmd;
    EXPECT_EQ(r.out.find("missing.gguf"), std::string::npos) << cmd << ": " << r.out;
  }
  // The command is named once: "tritune run: error: unknown option ...".
  r = run("run -m " + model_ + " --bogus");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("tritune run: error: unknown option '--bogus'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("tritune run", r.out.find("tritune run") + 1), std::string::npos) << r.out;
  if (available_cpus() < 256) {  // more threads than CPUs: allowed, with a note
    const std::string t = std::to_string(available_cpus() + 1);
    r = run("run -m " + model_ + " -n 1 -t " + t);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("note: -t " + t + " is more than the " + std::to_string(available_cpus()) +
                         " CPUs this process may run on"),
              std::string::npos)
        << r.out;
  }
  for (const char* t : {"0", "257", "-2"}) {  // the pool takes 1..256 threads
    r = run("run -m " + model_ + " -n 1 -t " + t);
    EXPECT_NE(r.status, 0) << t;
    EXPECT_NE(r.out.find("threads must be in 1..256"), std::string::npos) << r.out;
  }
  // A stray word is an error, not ignored: a value given to a flag (--json is one; the JSON
  // would otherwise go to stdout while the user looks for the file), a model without its -m.
  r = run("bench e2e -m " + model_ + " -p 4 -n 2 -r 1 --json " + dir_ + "/out.json");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unexpected argument '" + dir_ +
                       "/out.json' (--json takes no value here: it prints the JSON on stdout; "
                       "redirect it: > " +
                       dir_ + "/out.json)"),
            std::string::npos)
      << r.out;
  r = run("run -m " + model_ + " --chat x");
  EXPECT_NE(r.out.find("unexpected argument 'x' (--chat takes no value)"), std::string::npos)
      << r.out;
  r = run("inspect " + model_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("(a model file goes after -m: -m " + model_ + ")"), std::string::npos)
      << r.out;
  r = run("info extra");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unexpected argument 'extra' (see --help)"), std::string::npos) << r.out;
  r = run("ppl -m " + model_ + " -f " + dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("is a directory; give a text file"), std::string::npos) << r.out;
  r = run("ppl -m " + model_ + " -f " + dir_ + "/no-such.txt");
  EXPECT_NE(r.out.find("no-such.txt': No such file or directory"), std::string::npos) << r.out;
  for (const char* w : {"-1", "0", "61"}) {
    r = run(std::string("energy --idle ") + w);
    EXPECT_NE(r.status, 0) << w;
    EXPECT_NE(r.out.find("the window must be in (0, 60] seconds"), std::string::npos) << r.out;
  }
  // No option takes a non-finite number, or an integer beyond int64.
  for (const char* bad : {"energy --idle nan", "energy --idle inf", "bench roofline -r 1e400"}) {
    r = run(bad);
    EXPECT_EQ(r.status, 1) << bad;
    EXPECT_TRUE(r.out.find("expects a finite number") != std::string::npos ||
                r.out.find("expects an integer") != std::string::npos)
        << bad << "\n" << r.out;
  }
  for (const std::string& bad : {"run -m " + model_ + " -n 99999999999999999999999",
                                "run -m " + model_ + " -n 9223372036854775807",
                                "run -m " + model_ + " --ctx 9223372036854775807",
                                "bench e2e -m " + model_ + " -p 9223372036854775807",
                                "validate -m " + model_ + " -n 257"}) {
    r = run(bad);
    EXPECT_EQ(r.status, 1) << bad << "\n" << r.out;
    EXPECT_TRUE(r.out.find("is out of range") != std::string::npos ||
                r.out.find(": must be in ") != std::string::npos ||
                r.out.find("exceeds the model's context of 256 positions") != std::string::npos)
        << bad << "\n" << r.out;
  }
  // Lists with empty items (bench variants "" used to crash), and values Google Benchmark
  // would abort on.
  for (const std::string bad : {"bench variants --variants '' --shape 64x256",
                                "bench variants --variants , --shape 64x256",
                                "bench roofline -t 1,,2", "bench kernels --min-time 0"}) {
    r = run(bad);
    EXPECT_EQ(r.status, 1) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find("error:"), std::string::npos) << bad << "\n" << r.out;
  }
  // A list ending in a comma lost an item (the user meant another): refused by name, before
  // the options read after it (here -r/--mib run a tiny roofline, --cold-mib -1 is an error).
  for (const std::string bad :
       {"bench roofline -t 1, -r 1 --mib 1",
        "bench variants --variants i2s_gemv_r1_t1_u4_v512_g4_k0_avnni_p64_dmask, --shape 64x256 "
        "--cold-mib -1"}) {
    r = run(bad);
    EXPECT_EQ(r.status, 1) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find(",': give one or more comma-separated items"), std::string::npos)
        << bad << "\n"
        << r.out;
  }
  // An empty integer is not 0.
  for (const std::string bad : {"bench roofline -r ''", "bench roofline --mib= -r 1"}) {
    r = run(bad);
    EXPECT_EQ(r.status, 1) << bad << "\n" << r.out;
    EXPECT_NE(r.out.find(" expects an integer, got ''"), std::string::npos) << bad << "\n" << r.out;
  }
  // Shapes no kernel call can take are refused before any work (the tuner used to build 17 GB
  // of weights and fail every variant for minutes; bench kernels ran its roofline first).
  for (const std::string cmd :
       {"tune --shapes 100000x100000 --budget 1", "bench kernels --shapes 100000x100000",
        "bench variants --variants i2s_gemv_r1_t1_u4_v512_g4_k0_avnni_p64_dmask "
        "--shape 100000x100000"}) {
    r = run(cmd);
    EXPECT_NE(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("shape 100000x100000 in "), std::string::npos) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("Halide buffer"), std::string::npos) << cmd << ": " << r.out;
    EXPECT_EQ(r.out.find("roofline"), std::string::npos) << cmd << ": " << r.out;
  }
}

}  // namespace
}  // namespace tritune
