#include "tuner/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/error.h"

namespace tritune {
namespace {

TEST(TunerJson, RoundTripsNestedValues) {
  Json j = Json::object();
  Json inner = Json::object();
  inner.set("rows", "4").set("vbits", "512");
  j.set("name", "i2s_gemv_r4__avx2").set("n", int64_t(6912)).set("ok", true).set("none", nullptr);
  j.set("params", inner).set("samples", Json::numbers({1.5e-4, 2.25e-4, 3}));
  j.set("text", std::string("quote\" backslash\\ newline\n tab\t \x01"));
  const std::string s = j.dump();
  EXPECT_EQ(s.find('\n'), std::string::npos) << "a record must stay on one line";
  const Json back = parse_json(s);
  EXPECT_EQ(back.at("name").as_string(), "i2s_gemv_r4__avx2");
  EXPECT_EQ(back.at("n").as_int(), 6912);
  EXPECT_TRUE(back.at("ok").as_bool());
  EXPECT_TRUE(back.at("none").is_null());
  EXPECT_EQ(back.at("params").at("vbits").as_string(), "512");
  EXPECT_EQ(back.at("samples").as_numbers(), (std::vector<double>{1.5e-4, 2.25e-4, 3}));
  EXPECT_EQ(back.at("text").as_string(), j.at("text").as_string());
  EXPECT_EQ(back.dump(), s);
}

TEST(TunerJson, NonFiniteNumbersBecomeNullAndReadBackAsInfinity) {
  Json j = Json::numbers({1.0, std::numeric_limits<double>::infinity(), std::nan("")});
  EXPECT_EQ(j.dump(), "[1,null,null]");
  const auto v = parse_json(j.dump()).as_numbers();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(std::isinf(v[1]));
}

TEST(TunerJson, DecodesUnicodeEscapes) {
  EXPECT_EQ(parse_json("\"\\u00e9\\ud83d\\ude00\"").as_string(), "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(TunerJson, MalformedAndTruncatedTextIsAnErrorWithOffset) {
  for (const char* bad : {"{\"a\": 1", "{\"a\" 1}", "[1, 2,", "\"abc", "{\"a\": tru}", "01x",
                          "{} extra", "", "[1 2]", "{\"a\":\"\\q\"}"}) {
    try {
      parse_json(bad);
      FAIL() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("offset"), std::string::npos) << e.what();
    }
  }
}

TEST(TunerJson, RefusesHostileNesting) {
  EXPECT_THROW(parse_json(std::string(10000, '[')), Error);
}

TEST(TunerJson, TypedAccessNamesTheProblem) {
  const Json j = parse_json("{\"a\": \"x\", \"b\": 1.5}");
  EXPECT_THROW(j.at("a").as_number(), Error);
  EXPECT_THROW(j.at("b").as_int(), Error);
  try {
    j.at("missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
}

}  // namespace
}  // namespace tritune
