// The tool subcommands end to end through the built `tritune` binary: tune (records, resumes,
// shows and exports, keeps corrupt lines), convert (every loader and format gives the same
// logits; bad outputs refused before loading), make-model's output checks, and energy on fake
// counter trees (the model where nothing measures, powercap where a zone exists, a frozen
// counter named as such).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/json.h"
#include "tests/cli/cli_util.h"
#include "tests/energy/fake_tree.h"
#include "tests/kernels/test_util.h"
#include "tests/model/model_files_util.h"  // read_text

namespace tritune {
namespace {

using testing::CliResult;
using testing::read_text;
using testing::run_cli;

class ToolsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::cli_binary_exists()) {
      GTEST_SKIP() << "tritune binary not built at " << testing::cli_binary();
    }
    dir_ = testing::scratch_dir("tools_cli");
  }
  std::string dir_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The one JSON document in a command's output (the text from the first '{' to the last '}').
json::Value json_in(const CliResult& r, const std::string& what) {
  const size_t a = r.out.find('{'), b = r.out.rfind('}');
  if (a == std::string::npos || b == std::string::npos || b < a) {
    ADD_FAILURE() << what << ": no JSON in the output:\n" << r.out;
    return json::Value::object();
  }
  return json::parse(r.out.substr(a, b - a + 1), what);
}

// The tuning database file tune wrote under `db_dir` (there is one per CPU fingerprint).
std::string only_database(const std::string& db_dir, const CliResult& r) {
  const std::string key = "database " + db_dir + "/";
  const size_t at = r.out.find(key);
  if (at == std::string::npos) return "";
  const size_t end = r.out.find_first_of(" \n:", at + key.size());
  return r.out.substr(at + 9, end - at - 9);
}

TEST_F(ToolsCli, TuneRecordsResumesShowsAndExports) {
  const std::string db = dir_ + "/db";
  // --confirm 0: a confirmation re-ranks by its new samples and may confirm another candidate on
  // the next run, which is correct but not what this test counts.
  const std::string tune = "tune --shapes 64x256 --tokens 1 --confirm 0 --reps 3 --db-dir " + db;
  CliResult r = run_cli(tune + " --budget 3 --quiet");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string file = only_database(db, r);
  ASSERT_FALSE(file.empty()) << r.out;
  EXPECT_NE(r.out.find("i2_s gemv 64x256 t1 x1 cold"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("done: 3 of "), std::string::npos) << r.out;
  // A header line, then one record per measured variant (the default among them).
  std::vector<std::string> lines = lines_of(read_text(file));
  ASSERT_GE(lines.size(), 4u) << read_text(file);
  EXPECT_NE(lines[0].find("\"tritune_tuning_db\": 1"), std::string::npos) << lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    const json::Value rec = json::parse(lines[i], file);
    EXPECT_EQ(rec.at("n").as_double(), 64);
    EXPECT_EQ(rec.at("k").as_double(), 256);
    EXPECT_EQ(rec.at("format").as_string(), "i2_s");
  }
  const size_t first_run = lines.size();

  // The same budget again resumes: nothing new is measured, nothing is appended.
  r = run_cli(tune + " --budget 3 --quiet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("done: 3 of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" evaluated (0 failed), 0 new records"), std::string::npos) << r.out;
  EXPECT_EQ(lines_of(read_text(file)).size(), first_run);
  // One more candidate measures one more point.
  r = run_cli(tune + " --budget 4 --quiet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("done: 4 of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" evaluated (0 failed), 1 new records"), std::string::npos) << r.out;
  EXPECT_EQ(lines_of(read_text(file)).size(), first_run + 1);

  // --show lists the winner; --export writes it (and every record with --export-records).
  const std::string exported = dir_ + "/winners.json";
  r = run_cli("tune --show --db-dir " + db + " --export " + exported + " --export-records");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("(0 corrupt lines skipped)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("64x256"), std::string::npos) << r.out;
  const json::Value e = json::parse(read_text(exported), exported);
  ASSERT_EQ(e.at("winners").size(), 1u);
  EXPECT_EQ(e.at("winners")[0].at("n").as_double(), 64);
  EXPECT_EQ(e.at("records").as_double(), (double)first_run);  // the record count, header aside
}

TEST_F(ToolsCli, TuneSkipsCorruptDatabaseLinesAndLosesNothing) {
  const std::string db = dir_ + "/db";
  const std::string tune = "tune --shapes 64x256 --tokens 1 --confirm 0 --reps 3 --quiet --db-dir ";
  CliResult r = run_cli(tune + db + " --budget 2");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string file = only_database(db, r);
  ASSERT_FALSE(file.empty()) << r.out;
  const std::string good = read_text(file);
  // A mangled line in the middle and a last line cut short, as a crash mid-write leaves it.
  std::ofstream(file, std::ios::app) << "{\"variant\": \"x\", garbage\n{\"variant\": \"i2s_gemv_r1";
  const size_t before = lines_of(read_text(file)).size();

  r = run_cli("tune --show --db-dir " + db);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("(2 corrupt lines skipped)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(file + ":" + std::to_string(before - 1) + ": corrupt line"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(file + ":" + std::to_string(before) + ": truncated last line"),
            std::string::npos)
      << r.out;

  // Tuning on appends after them: every earlier byte stays, the cut line is ended first so the
  // new record is a line of its own.
  r = run_cli(tune + db + " --budget 3");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string after = read_text(file);
  EXPECT_EQ(after.compare(0, good.size(), good), 0);
  const std::vector<std::string> lines = lines_of(after);
  ASSERT_EQ(lines.size(), before + 1) << after;
  EXPECT_EQ(lines[before - 1], "{\"variant\": \"i2s_gemv_r1");
  EXPECT_NO_THROW(json::parse(lines.back(), "the new record"));
}

TEST_F(ToolsCli, TuneRefusesBadArgumentsWithTheFix) {
  const std::string db = " --db-dir " + dir_ + "/db";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"tune --shapes 64x256 --strategy best" + db, "best"},
      {"tune --shapes 64x256 --objective speed" + db, "speed"},
      {"tune --shapes 64x256 --formats q4_0" + db, "q4_0"},
      {"tune --shapes 0x256" + db, "0x256"},
      {"tune --shapes 64x256 --cache hot" + db, "--cache hot"},
      {"tune --shapes 64x256 --reps 0" + db, "--reps: 0 not in 1..100000"},
      {"tune --shapes 64x256 --timeout 0" + db, "(--timeout) 0"},
      {"tune --shapes 64x256 --confirm -1" + db, "--confirm: -1"},
      {"tune --shapes 64x256 --budget 0" + db, "--budget"},
      {"tune simulate --budget-fraction 1e30" + db, "--budget-fraction 1e30: a fraction"},
      {"tune simulate --seeds 0" + db, "--seeds 0: must be in 1.."},
  };
  for (const auto& c : cases) {
    const CliResult r = run_cli(c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(": error:"), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
  // None of them got as far as creating a database.
  EXPECT_FALSE(exists(dir_ + "/db"));
}

TEST_F(ToolsCli, TuneFailsWhenEveryVariantFailed) {
  // A 1 ms limit per candidate (compile and samples included) kills every child.
  const CliResult r = run_cli("tune --shapes 64x256 --tokens 1 --budget 2 --confirm 0 --reps 3 "
                              "--timeout 0.001 --quiet --db-dir " + dir_ + "/db");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("(every variant failed; the first, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tune: every variant failed in 1 of 1 tasks"), std::string::npos) << r.out;
}

TEST_F(ToolsCli, ExitStatusesFollowTheOutcome) {
  struct Case {
    std::string args;
    int status;
    std::string message;
  };
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0644), 0);
  const std::vector<Case> cases = {
      {"--version", 0, "tritune "},
      {"--help", 0, "usage: tritune <command>"},
      {"", 2, "usage: tritune <command>"},         // no command: usage, and a usage error
      {"bench", 2, "usage: tritune bench <command>"},
      {"--bogus", 2, "unknown option '--bogus' (run 'tritune --help')"},
      {"bench bogus", 2, "unknown command 'bogus' (run 'tritune bench --help')"},
      {"info > /dev/full", 1, ""},  // the message went to /dev/full as well
      {"tune --export x.json", 1, "--export writes what --show prints: add --show"},
      {"inspect -m " + dir_ + "/fifo", 1, "not a regular file"},  // used to block forever
      {"run -m " + dir_ + "/fifo", 1, "not a regular file"},
      {"inspect -m " + dir_ + "/missing.gguf --no-load", 1, "no such file or directory"},
      {"ppl -m x.gguf -f /dev/zero", 1, "is a device; give a text file"},  // used to read forever
      // Options that used to be ignored.
      {"run -m x.gguf --logits-out ''", 1, "--logits-out: the path is empty"},
      {"run -m x.gguf --logits-out " + dir_, 1, "is a directory; name a file"},
      {"run -m x.gguf --tokens 1,2 -p hi", 1, "--tokens is the prompt as token ids"},
      {"energy --table 3nm --tables", 1, "unknown energy model table '3nm'"},
      {"energy --root " + dir_ + "/nowhere", 1, "not a directory"},
      {"energy --idle 0.1 --json --backend model", 0, "\"idle_watts\": null"},
      // A full disk shows when the buffered tail is flushed at the end: an error, not success.
      {"make-model --shape tiny -o " + dir_ + "/lo.gguf && " + testing::cli_binary() +
           " run -m " + dir_ + "/lo.gguf -p hi -n 2 --logits-out /dev/full",
       1, "--logits-out /dev/full: write failed"},
  };
  for (const auto& c : cases) {
    const CliResult r = run_cli(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
}

TEST_F(ToolsCli, TuneVerifyFailsWhenAWinnerCannotBeMeasured) {
  const std::string db = dir_ + "/db";
  CliResult r = run_cli("tune --shapes 64x256 --tokens 1 --budget 1 --confirm 0 --reps 3 --quiet "
                        "--db-dir " + db);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string file = only_database(db, r);
  ASSERT_FALSE(file.empty()) << r.out;
  r = run_cli("tune verify --reps 3 --db-dir " + db);
  ASSERT_EQ(r.status, 0) << r.out;
  // The winner renamed to another legal point, which only the JIT can build, with the JIT
  // module missing: verify names the failure, shows no speedup and exits 1.
  const std::string original = read_text(file);
  auto rename_winner = [&](char kunroll) {
    std::string text = original;
    size_t n = 0;
    for (size_t at = text.find("\"variant\": \"i2s_gemv_"); at != std::string::npos;
         at = text.find("\"variant\": \"i2s_gemv_", at + 1)) {
      const size_t k = text.find("_u", at);
      text[k + 2] = kunroll;
      ++n;
    }
    std::ofstream(file, std::ios::trunc) << text;
    return n;
  };
  ASSERT_GT(rename_winner('2'), 0u);
  r = run_cli("tune verify --reps 3 --db-dir " + db + " --json " + dir_ + "/verify.json",
              "TRITUNE_JIT_MODULE=/nonexistent/jit.so TRITUNE_CACHE_DIR=" + dir_ + "/cache");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot load the kernel compiler module /nonexistent/jit.so"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("tune verify: 1 measurement(s) failed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0.000x"), std::string::npos) << r.out;  // "-": there is no speedup
  EXPECT_NE(read_text(dir_ + "/verify.json").find("\"speedup\": null"), std::string::npos);
  // Renamed to a point outside the space (kunroll 9): the record is never a winner, and both
  // show and verify say why instead of exporting or measuring it.
  rename_winner('9');
  r = run_cli("tune --show --db-dir " + db);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("which this build cannot run (variant name"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kunroll=9 outside its domain"), std::string::npos) << r.out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {  // only the warning names it
    if (line.rfind("warning: ", 0) != 0) {
      EXPECT_EQ(line.find("_u9_"), std::string::npos) << line;
    }
  }
  r = run_cli("tune verify --reps 3 --db-dir " + db);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("kunroll=9 outside its domain"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("has no cold winners to verify"), std::string::npos) << r.out;
}

TEST_F(ToolsCli, ConvertGivesTheSameLogitsThroughEveryLoaderAndFormat) {
  const std::string hf = dir_ + "/hf";
  CliResult r = run_cli("make-model --shape tiny --format safetensors -o " + hf);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto logits_of = [&](const std::string& model) {
    const std::string out = model + ".f32";
    const CliResult g = run_cli("run -m " + model + " -p \"Hello there\" -n 3 -t 1 --temp 0 " +
                                "--logits-out " + out);
    EXPECT_EQ(g.status, 0) << model << "\n" << g.out;
    return read_text(out);
  };
  const std::string reference = logits_of(hf);
  ASSERT_GT(reference.size(), 320u * 4);  // a few positions of the tiny shape's 320 logits
  // The ternary formats keep the weights and their scale exactly: the same bits come out.
  for (const std::string fmt : {"i2_s", "tq2_0", "tq1_0"}) {
    const std::string gguf = dir_ + "/m_" + fmt + ".gguf";
    r = run_cli("convert -i " + hf + " -o " + gguf + " --format " + fmt);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("wrote " + gguf), std::string::npos) << r.out;
    EXPECT_EQ(logits_of(gguf), reference) << fmt;
  }
  // GGUF to GGUF, with the embedding re-encoded: inspect sees the new type.
  const std::string q8 = dir_ + "/m_q8.gguf";
  r = run_cli("convert -i " + dir_ + "/m_i2_s.gguf -o " + q8 + " --format tq2_0 --embd-type q8_0");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_cli("inspect -m " + q8 + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value d = json_in(r, "inspect --json");
  EXPECT_EQ(d.at("model").at("embedding").as_string(), "Q8_0");
  // The checkpoint's name travels (the HF directory's name, kept through GGUF -> GGUF), not the
  // local path it was converted from.
  EXPECT_EQ(d.at("file_tables").at("metadata").at("general.name").as_string(), "hf");
  bool saw_embd = false;
  for (size_t i = 0; i < d.at("file_tables").at("tensors").size(); ++i) {
    const json::Value& t = d.at("file_tables").at("tensors")[i];
    if (t.at("name").as_string() == "token_embd.weight") {
      saw_embd = true;
      EXPECT_EQ(t.at("type").as_string(), "Q8_0");
    }
    if (t.at("name").as_string() == "blk.0.attn_q.weight") {
      EXPECT_EQ(t.at("type").as_string(), "TQ2_0");
    }
  }
  EXPECT_TRUE(saw_embd);
}

TEST_F(ToolsCli, ModelWritersRefuseBadOutputsBeforeAnyWork) {
  const std::string hf = dir_ + "/hf";
  ASSERT_EQ(run_cli("make-model --shape tiny --format safetensors -o " + hf).status, 0);
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"convert -i " + hf + " -o " + dir_, "-o " + dir_ + ": is a directory; name the output"},
      {"convert -i " + hf + " -o " + dir_ + "/no/such/m.gguf",
       "directory " + dir_ + "/no/such does not exist"},
      {"convert -i " + hf + " -o " + dir_ + "/m.safetensors", "the output is a GGUF file"},
      {"convert -i " + hf + " -o " + dir_ + "/m.gguf --format q4_0",
       "unknown linear-layer format 'q4_0'"},
      {"convert -i " + dir_ + "/missing -o " + dir_ + "/m.gguf", "no such file or directory"},
      {"make-model --shape tiny -o " + dir_ + "/m.safetensors", "--format safetensors"},
      {"make-model --shape tiny -o " + dir_, "is a directory"},
      {"make-model --shape tiny --format safetensors -o " + dir_ + "/no/such/hf",
       "does not exist (create it first)"},
  };
  for (const auto& c : cases) {
    const CliResult r = run_cli(c.args);
    EXPECT_EQ(r.status, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
    // Refused before loading the input: nothing was loaded, nothing written.
    EXPECT_EQ(r.out.find("loaded "), std::string::npos) << c.args << "\n" << r.out;
  }
  EXPECT_FALSE(exists(dir_ + "/m.gguf"));
  EXPECT_FALSE(exists(dir_ + "/m.safetensors"));
}

// A vocabulary that loads but cannot tokenize (a merge without its space) fails inspect too, not
// only the first run.
TEST_F(ToolsCli, InspectBuildsTheTokenizer) {
  const std::string path = dir_ + "/m.gguf";
  ASSERT_EQ(run_cli("make-model --shape tiny -o " + path).status, 0);
  std::string bytes = read_text(path);
  // tokenizer.ggml.merges: key, u32 type (array), u32 element type, u64 count, then the first
  // string as u64 length + bytes.
  const std::string key = "tokenizer.ggml.merges";
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  const size_t first = at + key.size() + 4 + 4 + 8;
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + first, 8);
  ASSERT_GT(len, 2u);
  const size_t space = bytes.find(' ', first + 8);
  ASSERT_LT(space, first + 8 + len);
  bytes[space] = 'x';
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  const CliResult r = run_cli("inspect -m " + path);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("the tokenizer cannot be built"), std::string::npos) << r.out;
  const CliResult j = run_cli("inspect -m " + path + " --json");
  EXPECT_EQ(j.status, 1) << j.out;
  EXPECT_NE(j.out.find("\"tokenizer_error\""), std::string::npos) << j.out;
}

TEST_F(ToolsCli, BenchKernelsWritesConsistentRowsAndTable) {
  const std::string js = dir_ + "/k.json", md = dir_ + "/k.md";
  const CliResult r = run_cli("bench kernels --shapes 64x256 --tokens 1 --threads 1 --cache warm "
                              "--min-time 0.01 --json " + js + " --table " + md);
  ASSERT_EQ(r.status, 0) << r.out;
  const json::Value d = json::parse(read_text(js), js);
  const json::Value& p = d.at("provenance");
  EXPECT_FALSE(p.at("isa").as_string().empty());
  EXPECT_GT(p.at("roofline").size(), 0u);
  ASSERT_EQ(d.at("rows").size(), 1u);
  const json::Value& row = d.at("rows")[0];
  EXPECT_EQ(row.at("format").as_string(), "i2_s");
  EXPECT_EQ(row.at("n").as_double(), 64);
  EXPECT_EQ(row.at("k").as_double(), 256);
  EXPECT_EQ(row.at("cache").as_string(), "warm");
  // The fractions are the row's own figures over the probes stored beside them.
  const double gbps = row.at("weight_GBps").as_double(), stream = row.at("stream_read_GBps").as_double();
  const double gops = row.at("GOPS").as_double(), peak = row.at("int8_peak_GOPS").as_double();
  ASSERT_GT(stream, 0);
  ASSERT_GT(peak, 0);
  EXPECT_NEAR(row.at("bw_frac").as_double(), gbps / stream, 1e-4 * (gbps / stream) + 1e-6);
  EXPECT_NEAR(row.at("peak_frac").as_double(), gops / peak, 1e-4 * (gops / peak) + 1e-6);
  EXPECT_NEAR(row.at("speedup_vs_f16").as_double(),
              row.at("f16_median_us").as_double() / row.at("median_us").as_double(),
              0.01 * row.at("speedup_vs_f16").as_double());
  // From the definitions: GOP/s counts 2 ops (a multiply and an add) per weight and token; an
  // i2_s matrix streams 2 bits per weight (64 x 256 / 4 = 4096 bytes) per call.
  const double sec = row.at("median_us").as_double() * 1e-6;
  EXPECT_NEAR(gops, 2.0 * 64 * 256 * 1 / sec / 1e9, 1e-4 * gops);
  EXPECT_NEAR(gbps, 64.0 * 256 * 2 / 8 / sec / 1e9, 1e-4 * gbps);
  // The Markdown table has the header and that one row.
  const std::vector<std::string> table = lines_of(read_text(md));
  ASSERT_EQ(table.size(), 3u) << read_text(md);
  EXPECT_EQ(table[2].rfind("| i2_s | 64x256 | 1 | 1 | warm |", 0), 0u) << table[2];
  // Its percentage cells ("% stream BW", "% int8 peak") are 100x the JSON fractions.
  std::vector<std::string> cells;
  for (size_t at = 0, next; (next = table[2].find('|', at + 1)) != std::string::npos; at = next) {
    cells.push_back(table[2].substr(at + 1, next - at - 1));
  }
  ASSERT_EQ(cells.size(), 12u) << table[2];
  EXPECT_NEAR(std::atof(cells[9].c_str()), 100 * row.at("bw_frac").as_double(), 0.501) << table[2];
  EXPECT_NE(cells[9].find('%'), std::string::npos) << table[2];
  EXPECT_NEAR(std::atof(cells[11].c_str()), 100 * row.at("peak_frac").as_double(), 0.501)
      << table[2];
}

TEST_F(ToolsCli, EnergyProbesFakeTreesAndNamesAFrozenCounter) {
  // Nothing under the root: every counter backend says why not, and the model measures.
  testing::FakeTree empty;
  CliResult r = run_cli("energy --json --root " + empty.root());
  ASSERT_EQ(r.status, 0) << r.out;
  json::Value d = json_in(r, "energy --json");
  EXPECT_EQ(d.at("selected").as_string(), "model");
  ASSERT_EQ(d.at("backends").size(), 5u);
  for (size_t i = 0; i < 4; ++i) {
    const json::Value& b = d.at("backends")[i];
    EXPECT_FALSE(b.at("usable").as_bool()) << b.at("backend").as_string();
    EXPECT_FALSE(b.at("reason").as_string().empty()) << b.at("backend").as_string();
  }
  EXPECT_TRUE(d.at("backends")[4].at("estimated").as_bool());
  r = run_cli("energy --root " + empty.root() + " --idle 0.1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("not measurable with the model"), std::string::npos) << r.out;
  r = run_cli("energy --root " + empty.root() + " --backend powercap");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("energy backend 'powercap' is not usable: " + empty.root()),
            std::string::npos)
      << r.out;

  // A powercap zone makes powercap the meter; its counter never moves here, which --idle
  // reports as a frozen counter instead of 0 W.
  testing::FakeTree zone;
  zone.powercap_zone("intel-rapl:0", "package-0", 1000000, 262143328850);
  r = run_cli("energy --json --root " + zone.root());
  ASSERT_EQ(r.status, 0) << r.out;
  d = json_in(r, "energy --json");
  EXPECT_EQ(d.at("selected").as_string(), "powercap");
  r = run_cli("energy --root " + zone.root() + " --idle 0.1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("energy counter frozen: rapl-powercap"), std::string::npos) << r.out;
  // TRITUNE_ENERGY_BACKEND chooses the backend where --backend is not given.
  r = run_cli("energy --json --root " + zone.root(), "TRITUNE_ENERGY_BACKEND=model");
  EXPECT_EQ(r.status, 0) << r.out;
  d = json_in(r, "energy --json (TRITUNE_ENERGY_BACKEND=model)");
  EXPECT_EQ(d.at("selected").as_string(), "model");
  r = run_cli("energy --tables --json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"7nm\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"45nm\""), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tritune
