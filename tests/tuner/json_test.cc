// The tuner's number convention on top of kernels/json.h: a failed candidate scores +inf, written
// as null, read back as +inf; records stay on one line.
#include "kernels/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/error.h"
#include "tuner/record.h"

namespace tritune {
namespace {

TEST(TunerJson, RoundTripsNestedValues) {
  json::Value j = json::Value::object();
  json::Value inner = json::Value::object();
  inner.set("rows", "4");
  inner.set("vbits", "512");
  j.set("name", "i2s_gemv_r4__avx2");
  j.set("n", int64_t(6912));
  j.set("ok", true);
  j.set("none", nullptr);
  j.set("params", inner);
  j.set("samples", json_numbers({1.5e-4, 2.25e-4, 3}));
  j.set("text", std::string("quote\" backslash\\ newline\n tab\t \x01"));
  const std::string s = json::dump(j);
  EXPECT_EQ(s.find('\n'), std::string::npos) << "a record must stay on one line";
  const json::Value back = json::parse(s);
  EXPECT_EQ(back.at("name").as_string(), "i2s_gemv_r4__avx2");
  EXPECT_EQ(back.at("n").as_int64(), 6912);
  EXPECT_TRUE(back.at("ok").as_bool());
  EXPECT_TRUE(back.at("none").is_null());
  EXPECT_EQ(back.at("params").at("vbits").as_string(), "512");
  EXPECT_EQ(numbers_of(back.at("samples")), (std::vector<double>{1.5e-4, 2.25e-4, 3}));
  EXPECT_EQ(back.at("text").as_string(), j.at("text").as_string());
  EXPECT_EQ(json::dump(back), s);
}

TEST(TunerJson, NonFiniteNumbersBecomeNullAndReadBackAsInfinity) {
  json::Value j = json_numbers({1.0, std::numeric_limits<double>::infinity(), std::nan("")});
  EXPECT_EQ(json::dump(j), "[1.0, null, null]");  // kernels/json.h's compact spelling
  const auto v = numbers_of(json::parse(json::dump(j)));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(std::isinf(v[1]));
  EXPECT_TRUE(json_number(-std::numeric_limits<double>::infinity()).is_null());
  EXPECT_THROW(numbers_of(json::parse("[1, \"x\"]")), Error);
}

}  // namespace
}  // namespace tritune
