// Strict JSON parser and writer (see json.h for why strict).
#include "kernels/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "kernels/error.h"
#include "kernels/utf8.h"

namespace tritune::json {

const char* type_name(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "bool";
    case Type::kNumber:
      return "number";
    case Type::kString:
      return "string";
    case Type::kArray:
      return "array";
    case Type::kObject:
      return "object";
  }
  return "?";
}

namespace {

[[noreturn]] void type_error(const char* want, Type got) {
  throw Error(std::string("json: expected ") + want + ", got " + type_name(got));
}

}  // namespace

Value::Value(uint64_t v) : type_(Type::kNumber), is_int_(true) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error("json: integer " + std::to_string(v) + " does not fit int64");
  }
  int_ = static_cast<int64_t>(v);
  num_ = static_cast<double>(v);
}

bool Value::as_bool() const {
  if (type_ != Type::kBool) type_error("bool", type_);
  return bool_;
}

double Value::as_double() const {
  if (type_ != Type::kNumber) type_error("number", type_);
  return num_;
}

int64_t Value::as_int64() const {
  if (type_ != Type::kNumber) type_error("integer", type_);
  if (!is_int_) {
    throw Error("json: expected an integer, got the non-integer number " + dump(*this));
  }
  return int_;
}

const std::string& Value::as_string() const {
  if (type_ != Type::kString) type_error("string", type_);
  return str_;
}

const std::vector<Value>& Value::as_array() const {
  if (type_ != Type::kArray) type_error("array", type_);
  return arr_;
}

std::vector<Value>& Value::as_array() {
  if (type_ != Type::kArray) type_error("array", type_);
  return arr_;
}

const std::vector<Value::Member>& Value::members() const {
  if (type_ != Type::kObject) type_error("object", type_);
  return obj_;
}

size_t Value::size() const {
  if (type_ == Type::kArray) return arr_.size();
  if (type_ == Type::kObject) return obj_.size();
  return 0;
}

const Value& Value::operator[](size_t i) const {
  const auto& a = as_array();
  if (i >= a.size()) {
    throw Error("json: array index " + std::to_string(i) + " out of range (size " +
                std::to_string(a.size()) + ")");
  }
  return a[i];
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &obj_[it->second].second;
}

const Value& Value::at(std::string_view key) const {
  if (type_ != Type::kObject) type_error("object", type_);
  const Value* v = find(key);
  if (!v) throw Error("json: object has no key \"" + std::string(key) + "\"");
  return *v;
}

Value& Value::set(std::string key, Value v) {
  if (type_ != Type::kObject) type_error("object", type_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    obj_[it->second].second = std::move(v);
    return obj_[it->second].second;
  }
  index_.emplace(key, obj_.size());
  obj_.emplace_back(std::move(key), std::move(v));
  return obj_.back().second;
}

Value& Value::push_back(Value v) {
  if (type_ != Type::kArray) type_error("array", type_);
  arr_.push_back(std::move(v));
  return arr_.back();
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return bool_ == o.bool_;
    case Type::kNumber:
      if (is_int_ && o.is_int_) return int_ == o.int_;
      return num_ == o.num_;
    case Type::kString:
      return str_ == o.str_;
    case Type::kArray:
      return arr_ == o.arr_;
    case Type::kObject:
      if (obj_.size() != o.obj_.size()) return false;
      for (const auto& [k, v] : obj_) {
        const Value* ov = o.find(k);
        if (!ov || !(*ov == v)) return false;
      }
      return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent over the bytes, tracking the position for error messages.

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw Error("json: " + source_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                what);
  }

  std::string describe_here() const {
    if (pos_ >= s_.size()) return "end of input";
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    char buf[32];
    if (c >= 0x20 && c < 0x7f) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    }
    return buf;
  }

  void skip_ws() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  void expect_literal(const char* lit, size_t n) {
    if (s_.compare(pos_, n, lit) != 0)
      fail("invalid literal (expected '" + std::string(lit) + "')");
    pos_ += n;
  }

  Value parse_value(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (pos_ >= s_.size()) fail("unexpected end of input (expected a value)");
    switch (s_[pos_]) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return Value(parse_string());
      case 't':
        expect_literal("true", 4);
        return Value(true);
      case 'f':
        expect_literal("false", 5);
        return Value(false);
      case 'n':
        expect_literal("null", 4);
        return Value();
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return parse_number();
        fail("unexpected " + describe_here() + " (expected a value)");
    }
  }

  Value parse_object(int depth) {
    Value obj = Value::object();
    ++pos_;  // '{'
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') {
        fail("unexpected " + describe_here() + " (expected a string key)");
      }
      size_t key_pos = pos_;
      std::string key = parse_string();
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') {
        fail("unexpected " + describe_here() + " (expected ':')");
      }
      ++pos_;
      skip_ws();
      Value v = parse_value(depth + 1);
      if (obj.index_.count(key)) fail_at(key_pos, "duplicate key \"" + key + "\"");
      obj.index_.emplace(key, obj.obj_.size());
      obj.obj_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      fail("unexpected " + describe_here() + " (expected ',' or '}')");
    }
  }

  Value parse_array(int depth) {
    Value arr = Value::array();
    ++pos_;  // '['
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_ws();
      arr.arr_.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      fail("unexpected " + describe_here() + " (expected ',' or ']')");
    }
  }

  // Rough base-10 order of magnitude of a valid JSON number literal (only its sign matters:
  // positive for huge values, negative for tiny ones).
  static long decimal_order(const char* b, const char* e) {
    const char* p = b;
    if (*p == '-') ++p;
    long int_digits = 0, lead_frac_zeros = 0;
    bool seen_nonzero = false;
    for (; p < e && *p >= '0' && *p <= '9'; ++p) {
      if (*p != '0') seen_nonzero = true;
      if (seen_nonzero) ++int_digits;
    }
    if (p < e && *p == '.') {
      for (++p; p < e && *p >= '0' && *p <= '9'; ++p) {
        if (!seen_nonzero && *p == '0')
          ++lead_frac_zeros;
        else
          seen_nonzero = true;
      }
    }
    long ex = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
      ++p;
      bool neg = false;
      if (*p == '+' || *p == '-') neg = *p++ == '-';
      for (; p < e; ++p) ex = std::min(ex * 10 + (*p - '0'), 100000000L);
      if (neg) ex = -ex;
    }
    long order = int_digits > 0 ? int_digits - 1 : -(lead_frac_zeros + 1);
    return order + ex;
  }

  Value parse_number() {
    size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    auto digit = [&](size_t i) { return i < s_.size() && s_[i] >= '0' && s_[i] <= '9'; };
    if (!digit(pos_)) fail("invalid number (expected a digit)");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit(pos_)) fail("invalid number (leading zeros are not allowed)");
    } else {
      while (digit(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (!digit(pos_)) fail("invalid number (expected a digit after '.')");
      while (digit(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit(pos_)) fail("invalid number (expected a digit in the exponent)");
      while (digit(pos_)) ++pos_;
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + pos_;
    Value v;
    v.type_ = Type::kNumber;
    // from_chars is locale-independent (strtod is not) and reports out-of-range values.
    auto r = std::from_chars(b, e, v.num_);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow (e.g. 1e-400) reads as 0 like other parsers; overflow has no double value.
      if (decimal_order(b, e) > 0) {
        fail_at(start, "number " + std::string(b, e) + " is out of the double range");
      }
      v.num_ = 0.0;
    } else if (r.ec != std::errc() || r.ptr != e) {
      fail_at(start, "invalid number " + std::string(b, e));
    }
    if (integral) {
      int64_t iv = 0;
      auto ri = std::from_chars(b, e, iv);
      if (ri.ec == std::errc() && ri.ptr == e) {
        v.is_int_ = true;
        v.int_ = iv;
      }
    }
    return v;
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        fail_at(pos_ + i, "invalid hex digit in \\u escape");
      }
    }
    pos_ += 4;
    return v;
  }

  // Length of the valid UTF-8 sequence at pos_, or 0 if invalid (RFC 3629: no overlongs,
  // no surrogates, nothing above U+10FFFF).
  size_t utf8_len_here() const {
    auto at = [&](size_t i) -> unsigned { return static_cast<unsigned char>(s_[i]); };
    unsigned c = at(pos_);
    size_t n = s_.size() - pos_;
    auto cont = [&](size_t i) { return i < n && (at(pos_ + i) & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      unsigned c1 = at(pos_ + 1);
      if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
      if (c == 0xED && c1 >= 0xA0) return 0;  // surrogate
      return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      unsigned c1 = at(pos_ + 1);
      if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
      if (c == 0xF4 && c1 >= 0x90) return 0;  // above U+10FFFF
      return 4;
    }
    return 0;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character " + describe_here() + " in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) fail("unterminated escape");
        char e = s_[pos_++];
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
            size_t esc = pos_ - 2;
            uint32_t cp = parse_hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(esc, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
                fail_at(esc, "high surrogate not followed by a \\u low surrogate");
              }
              pos_ += 2;
              uint32_t lo = parse_hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) {
                fail_at(esc, "high surrogate not followed by a low surrogate");
              }
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            unicode::append_utf8(out, cp);
            break;
          }
          default:
            pos_ -= 1;
            fail("invalid escape \\" + describe_here());
        }
        continue;
      }
      if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      size_t n = utf8_len_here();
      if (n == 0) fail("invalid UTF-8 " + describe_here() + " in string");
      out.append(s_.data() + pos_, n);
      pos_ += n;
    }
  }

  std::string_view s_;
  const std::string& source_;
  size_t pos_ = 0;
};

Value parse(std::string_view text, const std::string& source) {
  return Parser(text, source).parse_document();
}

Value parse_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("json: cannot open " + path + " for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error("json: error reading " + path);
  return parse(ss.str(), path);
}

// ---------------------------------------------------------------------------------------------
// Writer.

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
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
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

namespace {

void dump_number(const Value& v, std::string& out) {
  if (v.is_int()) {
    out += std::to_string(v.as_int64());
    return;
  }
  double d = v.as_double();
  if (!std::isfinite(d)) throw Error("json: cannot serialize a NaN or infinite number");
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  std::string s(buf, r.ptr);
  // Keep it a JSON number that reads back as a double, not an integer ("1" -> "1.0").
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  out += s;
}

void dump_rec(const Value& v, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * lvl, ' ');
  };
  switch (v.type()) {
    case Type::kNull:
      out += "null";
      break;
    case Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Type::kNumber:
      dump_number(v, out);
      break;
    case Type::kString:
      out += quote(v.as_string());
      break;
    case Type::kArray: {
      const auto& a = v.as_array();
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(level + 1);
        dump_rec(a[i], indent, level + 1, out);
      }
      if (!a.empty()) newline(level);
      out += ']';
      break;
    }
    case Type::kObject: {
      const auto& m = v.members();
      out += '{';
      for (size_t i = 0; i < m.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(level + 1);
        out += quote(m[i].first);
        out += ": ";
        dump_rec(m[i].second, indent, level + 1, out);
      }
      if (!m.empty()) newline(level);
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string dump(const Value& v, int indent) {
  std::string out;
  dump_rec(v, indent, 0, out);
  return out;
}

}  // namespace tritune::json
