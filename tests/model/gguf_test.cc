// GGUF reader/writer: every metadata value type (nested arrays included) and tensor type round
// trips; hand-built hostile headers give one clear Error naming the file, offset and key/tensor.
#include "model/gguf.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>

#include "kernels/error.h"
#include "kernels/i2s.h"
#include "model/ggml_types.h"
#include "tests/model/model_files_util.h"

namespace tritune {
namespace {

using gguf::Value;
using gguf::ValueType;
using testing::scratch_dir;

std::vector<std::pair<std::string, Value>> all_value_kinds() {
  std::vector<std::pair<std::string, Value>> kv;
  kv.emplace_back("t.u8", Value::u8(250));
  kv.emplace_back("t.i8", Value::i8(-128));
  kv.emplace_back("t.u16", Value::u16(65535));
  kv.emplace_back("t.i16", Value::i16(-32768));
  kv.emplace_back("t.u32", Value::u32(4000000000u));
  kv.emplace_back("t.i32", Value::i32(std::numeric_limits<int32_t>::min()));
  kv.emplace_back("t.f32", Value::f32(3.25f));
  kv.emplace_back("t.f32_nan", Value::f32(NAN));
  kv.emplace_back("t.bool_true", Value::boolean(true));
  kv.emplace_back("t.bool_false", Value::boolean(false));
  kv.emplace_back("t.string", Value::str(std::string("h\xC3\xA9llo\0world", 12)));
  kv.emplace_back("t.empty_string", Value::str(""));
  kv.emplace_back("t.u64", Value::u64(std::numeric_limits<uint64_t>::max()));
  kv.emplace_back("t.i64", Value::i64(std::numeric_limits<int64_t>::min()));
  kv.emplace_back("t.f64", Value::f64(-1.0 / 3.0));
  kv.emplace_back("t.arr_i32", Value::i32s({1, -2, 3}));
  kv.emplace_back("t.arr_str", Value::strings({"a", "", "\xE2\x82\xAC"}));
  kv.emplace_back("t.arr_empty", Value::array(ValueType::kF64, {}));
  kv.emplace_back("t.arr_bool",
                  Value::array(ValueType::kBool, {Value::boolean(true), Value::boolean(false)}));
  kv.emplace_back("t.arr_u8", Value::array(ValueType::kU8, {Value::u8(0), Value::u8(255)}));
  // Nested: array<array<string>> and array<array<array<i64>>> with ragged lengths and types.
  kv.emplace_back("t.nested",
                  Value::array(ValueType::kArray, {Value::strings({"x", "y"}), Value::i32s({7}),
                                                   Value::array(ValueType::kU16, {})}));
  kv.emplace_back(
      "t.nested3",
      Value::array(
          ValueType::kArray,
          {Value::array(ValueType::kArray,
                        {Value::array(ValueType::kI64, {Value::i64(-5), Value::i64(6)})})}));
  return kv;
}

struct TensorSpec {
  std::string name;
  uint32_t type;
  std::vector<int64_t> ne;
};

std::vector<uint8_t> fill(int64_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> b((size_t)bytes);
  for (auto& x : b) x = (uint8_t)rng();
  return b;
}

// Whether a writer's temporary file for `path` (PATH.tmp-<pid>-<n>) is left in its directory.
bool temporary_left(const std::string& path) {
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string prefix = path.substr(path.rfind('/') + 1) + ".tmp";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensorType) {
  const std::string dir = scratch_dir("gguf_rt");
  for (uint32_t alignment : {32u, 64u}) {
    const std::string path = dir + "/all_" + std::to_string(alignment) + ".gguf";
    const auto kv = all_value_kinds();
    const std::vector<TensorSpec> specs = {
        {"f32", ggml::kF32, {7, 3}},
        {"f16", ggml::kF16, {5}},
        {"bf16", ggml::kBF16, {3, 2, 2}},
        {"q8_0", ggml::kQ8_0, {64, 2}},
        {"q6_k", ggml::kQ6_K, {256, 3}},
        {"tq1_0", ggml::kTQ1_0, {512, 1}},
        {"tq2_0", ggml::kTQ2_0, {256, 2, 1, 2}},
        {"i2_s", ggml::kI2_S, {128, 3}},
        {"empty_dim", ggml::kF32, {4, 0}},
    };
    std::vector<std::vector<uint8_t>> data;
    {
      gguf::Writer w(path, alignment);
      for (const auto& [k, v] : kv) w.set(k, v);
      for (const auto& s : specs) w.add_tensor(s.name, s.type, s.ne);
      for (size_t i = 0; i < specs.size(); ++i) {
        data.push_back(fill(ggml::tensor_bytes(specs[i].type, specs[i].ne, "t"), i + 1));
        w.write_tensor(specs[i].name, data.back().data(), data.back().size());
      }
      w.finish();
    }
    const auto f = gguf::File::open(path);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    // Metadata: same keys, order and values (alignment adds general.alignment first).
    size_t off = alignment == 32 ? 0 : 1;
    ASSERT_EQ(f->metadata().size(), kv.size() + off);
    for (size_t i = 0; i < kv.size(); ++i) {
      EXPECT_EQ(f->metadata()[i + off].first, kv[i].first);
      EXPECT_EQ(f->metadata()[i + off].second, kv[i].second) << kv[i].first;
    }
    EXPECT_EQ(f->find("t.nested3")->arr[0].arr[0].arr[1].i, 6);
    EXPECT_EQ(f->find("t.string")->s.size(), 12u);
    ASSERT_EQ(f->tensors().size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const gguf::TensorInfo* t = f->tensor(specs[i].name);
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->type, specs[i].type);
      EXPECT_EQ(t->ne, specs[i].ne);
      EXPECT_EQ(t->offset % alignment, 0u);
      EXPECT_EQ(t->bytes, (int64_t)data[i].size());
      EXPECT_TRUE(data[i].empty() || std::memcmp(t->data, data[i].data(), data[i].size()) == 0)
          << specs[i].name;
      // The data points into the mapping, not a copy.
      EXPECT_GE(t->data, f->bytes()->data());
      EXPECT_LE(t->data + t->bytes, f->bytes()->data() + f->bytes()->size());
    }
    EXPECT_TRUE(f->bytes()->is_mapped());
  }
}

TEST(Gguf, TypedGetters) {
  const std::string path = scratch_dir("gguf_get") + "/g.gguf";
  {
    gguf::Writer w(path);
    w.set("a.u8", Value::u8(7));
    w.set("a.i64", Value::i64(-3));
    w.set("a.u64big", Value::u64(std::numeric_limits<uint64_t>::max()));
    w.set("a.f32", Value::f32(0.5f));
    w.set("a.s", Value::str("x"));
    w.set("a.ss", Value::strings({"p", "q"}));
    w.set("a.ii", Value::array(ValueType::kU16, {Value::u16(1), Value::u16(2)}));
    w.set("a.b", Value::boolean(true));
    w.set("a.s", Value::str("replaced"));  // same key again replaces in place
    w.finish();
  }
  const auto f = gguf::File::open(path);
  EXPECT_EQ(f->metadata().size(), 8u);
  EXPECT_EQ(f->get_int("a.u8"), 7);
  EXPECT_EQ(f->get_int("a.i64"), -3);
  EXPECT_EQ(f->get_int("missing", 42), 42);
  EXPECT_DOUBLE_EQ(f->get_float("a.f32"), 0.5);
  EXPECT_DOUBLE_EQ(f->get_float("a.u8"), 7.0);
  EXPECT_EQ(f->get_string("a.s"), "replaced");
  EXPECT_EQ(f->get_strings("a.ss"), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(f->get_ints("a.ii"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(f->get_bool("a.b", false));
  for (auto fn : std::vector<std::function<void()>>{
           [&] { f->get_int("a.u64big"); }, [&] { f->get_int("a.s"); },
           [&] { f->get_string("a.u8"); }, [&] { f->get_strings("a.ii"); },
           [&] { f->get_int("nope"); }}) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

TEST(Gguf, WriterRefusesMisuse) {
  const std::string dir = scratch_dir("gguf_wr");
  {
    gguf::Writer w(dir + "/a.gguf");
    w.add_tensor("a", ggml::kF32, {4});
    w.add_tensor("b", ggml::kF32, {4});
    EXPECT_THROW(w.add_tensor("a", ggml::kF32, {4}), Error);
    EXPECT_THROW(w.add_tensor(std::string(65, 'n'), ggml::kF32, {4}), Error);
    EXPECT_THROW(w.add_tensor("c", ggml::kQ8_0, {31}), Error);
    EXPECT_THROW(w.begin_tensor("b"), Error);  // out of order
    float v[5] = {};
    EXPECT_THROW(w.write_tensor("a", v, 20), Error);  // too many bytes
  }
  {
    gguf::Writer w(dir + "/b.gguf");
    w.add_tensor("a", ggml::kF32, {4});
    float v[4] = {};
    w.begin_tensor("a");
    w.append(v, 8);
    EXPECT_THROW(w.end_tensor(), Error);  // too few bytes
  }
  {
    gguf::Writer w(dir + "/c.gguf");
    w.add_tensor("a", ggml::kF32, {4});
    EXPECT_THROW(w.finish(), Error);  // tensor not written
  }
  // Unfinished writers leave no file behind.
  EXPECT_TRUE(testing::read_bytes(dir + "/c.gguf").empty());
  EXPECT_FALSE(temporary_left(dir + "/c.gguf"));
}

// ---- hostile headers, built byte by byte ------------------------------------------------------
class Bytes {
 public:
  template <typename T>
  Bytes& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(gguf::kMagic)
        .put<uint32_t>(version)
        .put<uint64_t>(n_tensors)
        .put<uint64_t>(n_kv);
  }
  Bytes& pad(size_t to) {
    b.resize((b.size() + to - 1) / to * to, 0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  std::vector<uint8_t> b;
};

// Parses and expects an Error whose message contains every fragment.
void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
  try {
    gguf::File::parse(MappedFile::from_bytes(bytes, "hostile.gguf"));
    ADD_FAILURE() << "parsed without error; expected: " << fragments[0];
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("hostile.gguf"), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

// A valid one-tensor file: key "k" (u32), tensor "w" F32 [8].
Bytes valid_one_tensor() {
  Bytes x;
  x.header(1, 1).str("k").put<uint32_t>(4).put<uint32_t>(5);
  x.str("w").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(ggml::kF32).put<uint64_t>(0);
  x.pad(32).zeros(32);
  return x;
}

// A signal that ends the process mid-write (Ctrl-C during make-model or convert) takes the
// half-written PATH.tmp with it, and the process still ends by that signal. In a child process:
// the writer has written its header (PATH.tmp exists) when the child raises the signal.
TEST(Gguf, AnInterruptedWriterLeavesNoTemporaryFile) {
  const std::string dir = scratch_dir("gguf_sig");
  for (int sig : {SIGINT, SIGTERM}) {
    const std::string path = dir + "/m" + std::to_string(sig) + ".gguf";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      gguf::Writer w(path);
      w.add_tensor("a", ggml::kF32, {1024});
      std::vector<float> v(512, 1.0f);
      w.begin_tensor("a");
      w.append(v.data(), v.size() * 4);  // half the tensor: the header is on disk
      if (!temporary_left(path)) _exit(3);
      raise(sig);
      _exit(4);  // not reached: the signal ends the process
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), sig);
    EXPECT_FALSE(temporary_left(path)) << path << ": its temporary is still there";
    EXPECT_NE(access(path.c_str(), F_OK), 0);
  }
}

// The writers rename a finished PATH.tmp over PATH. Over a device, fifo, directory or symbolic
// link that would replace it (`make-model -o /dev/null` once turned the device into a file), and
// a symbolic link at the old fixed PATH.tmp would have been followed and its target truncated.
TEST(Gguf, WritersReplaceOnlyRegularFiles) {
  const std::string dir = scratch_dir("gguf_nonreg");
  const std::string target = dir + "/target.txt";
  std::ofstream(target) << "keep me";
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(symlink(target.c_str(), (dir + "/link.gguf").c_str()), 0);
  mkdir((dir + "/sub.gguf").c_str(), 0755);
  ASSERT_EQ(symlink(target.c_str(), (dir + "/m.gguf.tmp").c_str()), 0);
  const auto write_one = [](const std::string& path) {
    gguf::Writer w(path);
    w.add_tensor("a", ggml::kF32, {4});
    const float v[4] = {1, 2, 3, 4};
    w.write_tensor("a", v, sizeof v);
    w.finish();
  };
  const std::vector<std::pair<std::string, std::string>> refused = {
      {dir + "/fifo", "is a fifo"},
      {dir + "/link.gguf", "is a symbolic link"},
      {dir + "/sub.gguf", "is a directory"},
  };
  for (const auto& [path, message] : refused) {
    try {
      write_one(path);
      ADD_FAILURE() << path << " was written";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  struct stat st;
  ASSERT_EQ(lstat((dir + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(lstat((dir + "/link.gguf").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // A link (or a user's file) at PATH.tmp is not the writer's temporary: it stays untouched.
  EXPECT_NO_THROW(write_one(dir + "/m.gguf"));
  EXPECT_EQ(gguf::File::open(dir + "/m.gguf")->tensors().size(), 1u);
  ASSERT_EQ(lstat((dir + "/m.gguf.tmp").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  std::ifstream in(target);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "keep me");
  // A regular file is replaced, as before.
  std::ofstream(dir + "/old.gguf") << "old";
  EXPECT_NO_THROW(write_one(dir + "/old.gguf"));
  EXPECT_EQ(gguf::File::open(dir + "/old.gguf")->tensors().size(), 1u);
}

// Two writers of one output, interleaved: each has its own temporary, so the file ends up as
// the last one to finish wrote it, whole (a shared PATH.tmp mixed their bytes, and one of them
// then failed to rename or reported success over a corrupt file).
TEST(Gguf, TwoWritersOfOneOutputDoNotMixTheirBytes) {
  const std::string path = scratch_dir("gguf_two") + "/same.gguf";
  std::vector<float> a(1024, 1.0f), b(1024, 2.0f);
  gguf::Writer wa(path), wb(path);
  wa.add_tensor("t", ggml::kF32, {1024});
  wb.add_tensor("t", ggml::kF32, {1024});
  wa.begin_tensor("t");
  wb.begin_tensor("t");  // both temporaries exist now
  wa.append(a.data(), 2048);
  wb.append(b.data(), 2048);
  wa.append(a.data() + 512, 2048);
  wa.end_tensor();
  wa.finish();
  wb.append(b.data() + 512, 2048);
  wb.end_tensor();
  EXPECT_NO_THROW(wb.finish());
  const auto f = gguf::File::open(path);
  const gguf::TensorInfo* t = f->tensor("t");
  ASSERT_NE(t, nullptr);
  const float* got = reinterpret_cast<const float*>(t->data);
  for (int i = 0; i < 1024; ++i) ASSERT_EQ(got[i], 2.0f) << i;
  EXPECT_FALSE(temporary_left(path));
}

TEST(GgufHostile, ValidBaseParses) {
  const auto f = gguf::File::parse(MappedFile::from_bytes(valid_one_tensor().b, "ok.gguf"));
  EXPECT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->get_int("k"), 5);
}

TEST(GgufHostile, MagicAndVersion) {
  Bytes x = valid_one_tensor();
  x.b[0] = 'X';
  expect_error(x.b, {"not a GGUF file", "magic"});
  expect_error({'G', 'G'}, {"too short"});
  expect_error({}, {"too short"});
  for (uint32_t v : {1u, 4u, 0xffffffffu}) {
    Bytes y = valid_one_tensor();
    std::memcpy(&y.b[4], &v, 4);
    expect_error(y.b, {"version " + std::to_string(v)});
  }
}

TEST(GgufHostile, AbsurdCounts) {
  expect_error(Bytes().header(1ull << 60, 0).zeros(64).b, {"tensor count"});
  expect_error(Bytes().header(0, 1ull << 62).zeros(64).b, {"metadata count"});
  expect_error(Bytes().header(0, 5).str("k").put<uint32_t>(4).put<uint32_t>(1).b,
               {"metadata count 5", "cannot fit"});
  Bytes second;
  second.header(0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1);
  for (int i = 0; i < 13; ++i) second.put<uint8_t>(0xff);
  expect_error(second.b, {"metadata entry 1 key", "exceeds"});
  // A string length pointing far past the end.
  expect_error(Bytes().header(0, 1).put<uint64_t>(1ull << 62).zeros(16).b,
               {"metadata entry 0 key", "exceeds"});
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(~0ull).zeros(8).b,
               {"key 'k'", "string length"});
  // Array counts that cannot fit: 1e15 u32s, 2^40 strings, 2^40 nested arrays.
  for (uint32_t et : {4u, 8u, 9u}) {
    expect_error(Bytes()
                     .header(0, 1)
                     .str("arr")
                     .put<uint32_t>(9)
                     .put<uint32_t>(et)
                     .put<uint64_t>(et == 4 ? 1000000000000000ull : 1ull << 40)
                     .zeros(64)
                     .b,
                 {"key 'arr'", "cannot fit"});
  }
}

TEST(GgufHostile, BadValues) {
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0).b,
               {"key 'k'", "unknown value type 13"});
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(0).b,
               {"key 'k'", "element type 77"});
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2).b,
               {"key 'k'", "bool"});
  // Nesting deeper than the limit (each level: type 9, count 1).
  Bytes deep;
  deep.header(0, 1).str("deep").put<uint32_t>(9);
  for (int i = 0; i < 20; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);
  deep.put<uint32_t>(4).put<uint64_t>(0);
  expect_error(deep.b, {"key 'deep'", "nested deeper"});
  Bytes dup;
  dup.header(0, 2)
      .str("k")
      .put<uint32_t>(4)
      .put<uint32_t>(1)
      .str("k")
      .put<uint32_t>(4)
      .put<uint32_t>(2);
  expect_error(dup.b, {"duplicate key 'k'"});
  Bytes align;
  align.header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(24);
  expect_error(align.b, {"general.alignment", "power of two"});
}

TEST(GgufHostile, BadTensorInfos) {
  auto one = [](uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                size_t data = 64) {
    Bytes x;
    x.header(1, 0).str("blk.0.attn_q.weight").put<uint32_t>(n_dims);
    for (uint64_t d : ne) x.put<uint64_t>(d);
    x.put<uint32_t>(type).put<uint64_t>(offset).pad(32).zeros(data);
    return x.b;
  };
  const std::string t = "tensor 'blk.0.attn_q.weight'";
  expect_error(one(5, {1, 1, 1, 1, 1}, 0, 0), {t, "5 dimensions"});
  expect_error(one(0, {}, 0, 0), {t, "0 dimensions"});
  expect_error(one(1, {8}, 99, 0), {t, "type 99"});
  expect_error(one(1, {8}, 38, 0), {t, "TL1"});
  expect_error(one(2, {1ull << 40, 1ull << 40}, 0, 0), {t, "overflows"});
  expect_error(one(1, {~0ull}, 0, 0), {t, "absurd"});
  expect_error(one(1, {33}, ggml::kQ8_0, 0), {t, "multiple of the Q8_0 block"});
  expect_error(one(1, {8}, 0, 16), {t, "not a multiple of the 32-byte alignment"});
  expect_error(one(1, {64}, 0, 0), {t, "extends past the end"});  // 256 bytes, 64 there
  expect_error(one(1, {8}, 0, 1ull << 62), {t, "extends past the end"});
  expect_error(one(1, {8}, 0, ~0ull & ~31ull), {t, "extends past the end"});
  // Two tensors overlapping.
  Bytes ov;
  ov.header(2, 0);
  ov.str("a").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(0);
  ov.str("b").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(32);
  ov.pad(32).zeros(128);
  expect_error(ov.b, {"'a'", "'b'", "overlap"});
  Bytes dup;
  dup.header(2, 0);
  dup.str("a").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
  dup.str("a").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(32);
  dup.pad(32).zeros(128);
  expect_error(dup.b, {"duplicate tensor 'a'"});
}

TEST(GgufHostile, TruncatedAtEveryOffset) {
  // A small but complete file (metadata of every kind, several tensor types).
  const std::string path = scratch_dir("gguf_trunc") + "/small.gguf";
  {
    gguf::Writer w(path);
    for (const auto& [k, v] : all_value_kinds()) w.set(k, v);
    w.add_tensor("a", ggml::kF32, {8});
    w.add_tensor("b", ggml::kTQ2_0, {256});
    w.add_tensor("c", ggml::kI2_S, {128, 2});
    for (const char* n : {"a", "b", "c"}) {
      const int64_t bytes = std::string(n) == "a" ? 32 : (std::string(n) == "b" ? 66 : 96);
      const std::vector<uint8_t> d = fill(bytes, 9);
      w.write_tensor(n, d.data(), d.size());
    }
    w.finish();
  }
  const std::vector<uint8_t> full = testing::read_bytes(path);
  const auto whole = gguf::File::parse(MappedFile::from_bytes(full, "small.gguf"));
  uint64_t data_end = 0;
  for (const auto& t : whole->tensors()) {
    data_end = std::max<uint64_t>(data_end, t.file_offset + (uint64_t)t.bytes);
  }
  int errors = 0;
  for (size_t len = 0; len < full.size(); ++len) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + (long)len);
    try {
      const auto f = gguf::File::parse(MappedFile::from_bytes(std::move(cut), "cut.gguf"));
      // Only the trailing padding after the last tensor may go missing.
      EXPECT_GE(len, data_end) << "truncated at " << len << " parsed";
      EXPECT_EQ(f->tensors().size(), 3u);
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(errors, (int)data_end);
}

}  // namespace
}  // namespace tritune
