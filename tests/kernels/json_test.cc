// Tests for the strict JSON parser/writer in kernels/json.h (model files and tuning files).
#include "kernels/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "kernels/error.h"

namespace tritune::json {
namespace {

// The message of the tritune::Error thrown by parse(text), or "" if it parsed.
std::string parse_error(const std::string& text, const std::string& src = "t.json") {
  try {
    parse(text, src);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Json, ParsesScalars) {
  EXPECT_TRUE(parse("null").is_null());
  EXPECT_TRUE(parse(" true ").as_bool());
  EXPECT_FALSE(parse("false").as_bool());
  EXPECT_EQ(parse("\"hi\"").as_string(), "hi");
  EXPECT_EQ(parse("42").as_int64(), 42);
  EXPECT_EQ(parse("-7").as_int64(), -7);
  EXPECT_DOUBLE_EQ(parse("1.5e3").as_double(), 1500.0);
  EXPECT_DOUBLE_EQ(parse("-0.25").as_double(), -0.25);
  EXPECT_DOUBLE_EQ(parse("2E-2").as_double(), 0.02);
}

TEST(Json, IntegersStayExactAndNonIntegersAreNotInts) {
  Value big = parse("9223372036854775807");
  ASSERT_TRUE(big.is_int());
  EXPECT_EQ(big.as_int64(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse("-9223372036854775808").as_int64(), std::numeric_limits<int64_t>::min());
  // 2^53 + 1 is not representable as a double but must survive as an integer.
  EXPECT_EQ(parse("9007199254740993").as_int64(), 9007199254740993LL);
  Value huge = parse("9223372036854775808");  // beyond int64: a double only
  EXPECT_FALSE(huge.is_int());
  EXPECT_DOUBLE_EQ(huge.as_double(), 9223372036854775808.0);
  EXPECT_FALSE(parse("3.0").is_int());
  EXPECT_FALSE(parse("1e3").is_int());
  EXPECT_THROW(parse("3.5").as_int64(), Error);
  EXPECT_EQ(parse("1e-400").as_double(), 0.0);  // underflow reads as zero
  EXPECT_NE(parse_error("1e400"), "");          // overflow has no double
  EXPECT_NE(parse_error("-123456789e400"), "");
}

TEST(Json, StringEscapesAndUnicode) {
  EXPECT_EQ(parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parse(R"("\u00e9\u65E5")").as_string(), "\xC3\xA9\xE6\x97\xA5");  // é 日
  EXPECT_EQ(parse(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");      // 😀
  EXPECT_EQ(parse(R"("\u0000x")").as_string(), std::string("\0x", 2));
  EXPECT_EQ(parse("\"h\xC3\xA9\"").as_string(), "h\xC3\xA9");  // raw UTF-8 passes
  EXPECT_NE(parse_error(R"("\ud83d")"), "");                   // lone high surrogate
  EXPECT_NE(parse_error(R"("\ude00")"), "");                   // lone low surrogate
  EXPECT_NE(parse_error(R"("\ud83d\u0041")"), "");             // high + non-low
  EXPECT_NE(parse_error(R"("\x41")"), "");                     // unknown escape
  EXPECT_NE(parse_error(R"("\u12G4")"), "");                   // bad hex
  EXPECT_NE(parse_error("\"a\nb\""), "");                      // raw control char
  EXPECT_NE(parse_error("\"\xFF\""), "");                      // invalid UTF-8
  EXPECT_NE(parse_error("\"\xC0\xAF\""), "");                  // overlong
  EXPECT_NE(parse_error("\"abc"), "");                         // unterminated
}

TEST(Json, ObjectsAndArrays) {
  Value v = parse(R"({"b": [1, 2, {"c": null}], "a": {"x": "y"}, "e": []})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v.members()[0].first, "b");  // document order kept
  EXPECT_EQ(v.members()[1].first, "a");
  EXPECT_EQ(v.at("b").size(), 3u);
  EXPECT_EQ(v.at("b")[1].as_int64(), 2);
  EXPECT_TRUE(v.at("b")[2].at("c").is_null());
  EXPECT_EQ(v.at("a").at("x").as_string(), "y");
  EXPECT_TRUE(v.contains("e"));
  EXPECT_FALSE(v.contains("z"));
  EXPECT_EQ(v.find("z"), nullptr);
  EXPECT_THROW(v.at("z"), Error);
  EXPECT_THROW(v.at("b")[3], Error);
  EXPECT_THROW(v.at("a").as_array(), Error);
  EXPECT_THROW(v.at("b").as_string(), Error);
}

TEST(Json, RejectsMalformedInput) {
  for (const char* bad : {"",      "   ",       "{",        "[1,]", "{\"a\":1,}",
                          "[1 2]", "{\"a\" 1}", "{a:1}",    "01",   "-",
                          "1.",    ".5",        "+1",       "1e",   "tru",
                          "nul",   "[1]x",      "{} {}",    "'a'",  "\xEF\xBB\xBF{}",
                          "NaN",   "Infinity",  "[\"a\",,]"}) {
    EXPECT_NE(parse_error(bad), "") << "accepted: " << bad;
  }
  EXPECT_NE(parse_error(R"({"a": 1, "a": 2})"), "");  // duplicate key
}

TEST(Json, ErrorsGiveLineAndColumn) {
  std::string msg = parse_error("{\n  \"a\": 1,\n  \"b\": tru\n}", "cfg.json");
  EXPECT_NE(msg.find("cfg.json:3:8"), std::string::npos) << msg;
  msg = parse_error("[1,\n2,\n]", "x.json");
  EXPECT_NE(msg.find("x.json:3:1"), std::string::npos) << msg;
}

TEST(Json, DepthLimitStopsHostileNesting) {
  std::string deep(kMaxDepth + 10, '[');
  deep += std::string(kMaxDepth + 10, ']');
  EXPECT_NE(parse_error(deep).find("nesting"), std::string::npos);
  std::string ok(100, '[');
  ok += std::string(100, ']');
  EXPECT_EQ(parse_error(ok), "");
}

TEST(Json, DumpRoundTrips) {
  const char* text =
      R"({"name": "t\u00e9st \"q\" \\ \n", "n": [0, -1, 9223372036854775807, 0.1, 1e-300, 2.5],)"
      R"( "o": {"t": true, "f": false, "z": null}, "e": {}, "a": []})";
  Value v = parse(text);
  for (int indent : {-1, 0, 2}) {
    std::string s = dump(v, indent);
    Value back = parse(s);
    EXPECT_EQ(back, v) << s;
  }
  EXPECT_EQ(dump(parse(R"({"a": [1, 2.5, "x"]})")), R"({"a": [1, 2.5, "x"]})");
  EXPECT_EQ(dump(parse("[]"), 2), "[]");
  EXPECT_EQ(dump(parse("[1]"), 2), "[\n  1\n]");
  EXPECT_EQ(dump(Value(3.0)), "3.0");  // stays a double when read back
  EXPECT_FALSE(parse(dump(Value(3.0))).is_int());
  EXPECT_THROW(dump(Value(std::nan(""))), Error);
  EXPECT_THROW(dump(Value(std::numeric_limits<double>::infinity())), Error);
}

TEST(Json, QuoteEscapes) {
  EXPECT_EQ(quote("a\"b\\c\n\x01\x7f"), "\"a\\\"b\\\\c\\n\\u0001\\u007f\"");
  EXPECT_EQ(quote("\xC3\xA9"), "\"\xC3\xA9\"");
  // Every byte string that is valid UTF-8 survives quote -> parse.
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  EXPECT_EQ(parse(quote(all)).as_string(), all);
}

TEST(Json, Builders) {
  Value o = Value::object();
  o.set("k", 1);
  o.set("s", "v");
  o.set("k", Value(2.5));  // replaces, keeps position
  Value a = Value::array();
  a.push_back(Value());
  a.push_back(true);
  o.set("a", a);
  EXPECT_EQ(dump(o), R"({"k": 2.5, "s": "v", "a": [null, true]})");
  EXPECT_THROW(Value(uint64_t{1} << 63), Error);
  EXPECT_THROW(a.set("x", 1), Error);
  EXPECT_THROW(o.push_back(1), Error);
}

TEST(Json, MutatedInputEitherParsesOrThrowsError) {
  const std::string base =
      R"({"model": {"vocab": {"a": 0, "\u00e9": 1}, "merges": ["a b", ["c", "d"]]},)"
      R"( "n": [-1.5e3, 0, 12345678901234], "t": true, "z": null, "s": "x\ty\ud83d\ude00"})";
  ASSERT_EQ(parse_error(base), "");
  std::mt19937 rng(99);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = base;
    switch (rng() % 3) {
      case 0:
        s.resize(rng() % s.size());
        break;  // truncation
      case 1:
        s[rng() % s.size()] = static_cast<char>(rng());
        break;  // byte flip
      default:
        s.insert(rng() % s.size(), 1, "{}[],:\"\\0-e."[rng() % 13]);
        break;
    }
    try {
      Value v = parse(s);
      ++parsed;
      ASSERT_EQ(parse(dump(v)), v) << s;  // whatever parses survives a round trip
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(parsed, 10);
}

TEST(Json, ParseFile) {
  const char* tmp = std::getenv("TRITUNE_TEST_TMP");
  std::string dir = tmp ? tmp : "/tmp";
  std::string cmd = "mkdir -p '" + dir + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string path = dir + "/json_test_file.json";
  {
    std::ofstream f(path);
    f << "{\"vocab_size\": 128256,\n \"bad\": [1,, 2]}";
  }
  try {
    parse_file(path);
    FAIL() << "accepted a malformed file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2:12"), std::string::npos) << e.what();
  }
  {
    std::ofstream f(path);
    f << "{\"vocab_size\": 128256}";
  }
  EXPECT_EQ(parse_file(path).at("vocab_size").as_int64(), 128256);
  std::remove(path.c_str());
  EXPECT_THROW(parse_file(dir + "/does_not_exist.json"), Error);
}

}  // namespace
}  // namespace tritune::json
