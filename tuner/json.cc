#include "tuner/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "kernels/error.h"

namespace tritune {

namespace {

const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::kNull:
      return "null";
    case Json::Type::kBool:
      return "bool";
    case Json::Type::kNumber:
      return "number";
    case Json::Type::kString:
      return "string";
    case Json::Type::kArray:
      return "array";
    case Json::Type::kObject:
      return "object";
  }
  return "?";
}

void expect(const Json& j, Json::Type t) {
  if (j.type() != t) {
    throw Error(std::string("JSON: expected ") + type_name(t) + ", found " + type_name(j.type()));
  }
}

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += (char)c;
        }
    }
  }
  out += '"';
}

void dump_number(double v, std::string& out) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    std::snprintf(buf, sizeof buf, "%lld", (long long)v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  out += buf;
}

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Json document() {
    Json v = value(0);
    ws();
    if (i_ != s_.size()) fail("trailing characters after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error("JSON at offset " + std::to_string(i_) + ": " + why);
  }
  void ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end of text (truncated?)");
    return s_[i_];
  }
  void literal(const char* word) {
    for (const char* p = word; *p; ++p, ++i_) {
      if (i_ >= s_.size() || s_[i_] != *p) fail(std::string("expected '") + word + "'");
    }
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting deeper than 64 levels");
    const char c = peek();
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json(string());
    if (c == 't') {
      literal("true");
      return Json(true);
    }
    if (c == 'f') {
      literal("false");
      return Json(false);
    }
    if (c == 'n') {
      literal("null");
      return Json();
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail(std::string("unexpected character '") + c + "'");
  }

  Json number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    auto digits = [&] {
      const size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == d) fail("malformed number");
    };
    digits();
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      digits();
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      digits();
    }
    return Json(std::strtod(s_.substr(start, i_ - start).c_str(), nullptr));
  }

  static void utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int n = 0; n < 4; ++n) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= h - '0';
      else if (h >= 'a' && h <= 'f')
        v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        v |= h - 'A' + 10;
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string (truncated?)");
      const char c = s_[i_++];
      if (c == '"') return out;
      if ((unsigned char)c < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
              s_[i_ + 1] == 'u') {
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(cp, out);
          break;
        }
        default:
          fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  Json array(int depth) {
    ++i_;
    Json a = Json::array();
    if (peek() == ']') {
      ++i_;
      return a;
    }
    while (true) {
      a.push(value(depth + 1));
      const char c = peek();
      ++i_;
      if (c == ']') return a;
      if (c != ',') {
        --i_;
        fail("expected ',' or ']' in array");
      }
    }
  }

  Json object(int depth) {
    ++i_;
    Json o = Json::object();
    if (peek() == '}') {
      ++i_;
      return o;
    }
    while (true) {
      if (peek() != '"') fail("expected a string key in object");
      std::string key = string();
      if (peek() != ':') fail("expected ':' after key '" + key + "'");
      ++i_;
      o.set(key, value(depth + 1));
      const char c = peek();
      ++i_;
      if (c == '}') return o;
      if (c != ',') {
        --i_;
        fail("expected ',' or '}' in object");
      }
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

Json Json::numbers(const std::vector<double>& v) {
  Json a = array();
  a.arr_.reserve(v.size());
  for (double x : v) a.arr_.emplace_back(x);
  return a;
}

bool Json::as_bool() const {
  expect(*this, Type::kBool);
  return b_;
}
double Json::as_number() const {
  expect(*this, Type::kNumber);
  return num_;
}
int64_t Json::as_int() const {
  expect(*this, Type::kNumber);
  if (num_ != std::floor(num_) || std::fabs(num_) > 9.007199254740992e15) {
    throw Error("JSON: expected an integer, found " + std::to_string(num_));
  }
  return (int64_t)num_;
}
const std::string& Json::as_string() const {
  expect(*this, Type::kString);
  return str_;
}
const std::vector<Json>& Json::items() const {
  expect(*this, Type::kArray);
  return arr_;
}
const std::vector<std::pair<std::string, Json>>& Json::members() const {
  expect(*this, Type::kObject);
  return obj_;
}
std::vector<double> Json::as_numbers() const {
  std::vector<double> out;
  for (const Json& x : items()) {
    out.push_back(x.is_null() ? std::numeric_limits<double>::infinity() : x.as_number());
  }
  return out;
}

const Json* Json::get(const std::string& key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& kv : obj_) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

const Json& Json::at(const std::string& key) const {
  expect(*this, Type::kObject);
  const Json* j = get(key);
  if (!j) throw Error("JSON: missing key '" + key + "'");
  return *j;
}

Json& Json::set(const std::string& key, Json v) {
  if (type_ == Type::kNull) type_ = Type::kObject;
  expect(*this, Type::kObject);
  for (auto& kv : obj_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return *this;
    }
  }
  obj_.emplace_back(key, std::move(v));
  return *this;
}

Json& Json::push(Json v) {
  if (type_ == Type::kNull) type_ = Type::kArray;
  expect(*this, Type::kArray);
  arr_.push_back(std::move(v));
  return *this;
}

namespace {
void dump_to(const Json& j, std::string& out) {
  switch (j.type()) {
    case Json::Type::kNull:
      out += "null";
      break;
    case Json::Type::kBool:
      out += j.as_bool() ? "true" : "false";
      break;
    case Json::Type::kNumber:
      dump_number(j.as_number(), out);
      break;
    case Json::Type::kString:
      dump_string(j.as_string(), out);
      break;
    case Json::Type::kArray: {
      out += '[';
      bool first = true;
      for (const Json& x : j.items()) {
        if (!first) out += ',';
        first = false;
        dump_to(x, out);
      }
      out += ']';
      break;
    }
    case Json::Type::kObject: {
      out += '{';
      bool first = true;
      for (const auto& kv : j.members()) {
        if (!first) out += ',';
        first = false;
        dump_string(kv.first, out);
        out += ':';
        dump_to(kv.second, out);
      }
      out += '}';
      break;
    }
  }
}
}  // namespace

std::string Json::dump() const {
  std::string out;
  dump_to(*this, out);
  return out;
}

Json parse_json(const std::string& text) {
  return Parser(text).document();
}

}  // namespace tritune
