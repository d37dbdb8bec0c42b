// UTF-8, Unicode class lookups (binary search over the generated tables, with an ASCII fast
// path since most tokenizer input is ASCII) and the GPT-2 byte-level map.
#include "model/unicode.h"

#include <array>

#include "model/unicode_data.h"

namespace tritune::unicode {

Decoded decode_utf8(std::string_view s, size_t pos) {
  auto at = [&](size_t i) -> uint32_t { return static_cast<unsigned char>(s[pos + i]); };
  const size_t n = s.size() - pos;
  const uint32_t c = at(0);
  if (c < 0x80) return {c, 1};
  auto cont = [&](size_t i) { return i < n && (at(i) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (cont(1)) return {((c & 0x1F) << 6) | (at(1) & 0x3F), 2};
  } else if (c >= 0xE0 && c <= 0xEF) {
    if (cont(1) && cont(2)) {
      uint32_t cp = ((c & 0x0F) << 12) | ((at(1) & 0x3F) << 6) | (at(2) & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    if (cont(1) && cont(2) && cont(3)) {
      uint32_t cp =
          ((c & 0x07) << 18) | ((at(1) & 0x3F) << 12) | ((at(2) & 0x3F) << 6) | (at(3) & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {kInvalidCodepoint, 1};
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    Decoded d = decode_utf8(s, i);
    if (d.cp == kInvalidCodepoint) return false;
    i += d.len;
  }
  return true;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut off by the end of s.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    if (c >= 0xE0 && c <= 0xEF) need = 3;
    if (c >= 0xF0 && c <= 0xF4) need = 4;
    if (need > back) {
      // Hold the tail back only if some continuation can still complete it (E0, ED, F0 and F4
      // restrict their second byte; other leads accept any continuation byte).
      bool viable = true;
      if (back >= 2) {
        unsigned char c1 = static_cast<unsigned char>(s[n - back + 1]);
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
            (c == 0xF4 && c1 > 0x8F)) {
          viable = false;
        }
      }
      return viable ? n - back : n;
    }
    return n;
  }
  return n;
}

namespace {

bool in_table(const unicode_data::Range* t, size_t count, uint32_t cp) {
  size_t lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < t[mid].first) {
      hi = mid;
    } else if (cp > t[mid].last) {
      lo = mid + 1;
    } else {
      return true;
    }
  }
  return false;
}

enum : uint8_t { kL = 1, kN = 2, kS = 4 };

struct AsciiClasses {
  std::array<uint8_t, 128> f{};
  AsciiClasses() {
    for (uint32_t c = 0; c < 128; ++c) {
      f[c] = (in_table(unicode_data::kLetter, unicode_data::kLetterCount, c) ? kL : 0) |
             (in_table(unicode_data::kNumber, unicode_data::kNumberCount, c) ? kN : 0) |
             (in_table(unicode_data::kWhitespace, unicode_data::kWhitespaceCount, c) ? kS : 0);
    }
  }
};

const AsciiClasses& ascii() {
  static const AsciiClasses a;
  return a;
}

}  // namespace

bool is_letter(uint32_t cp) {
  if (cp < 128) return ascii().f[cp] & kL;
  return in_table(unicode_data::kLetter, unicode_data::kLetterCount, cp);
}

bool is_number(uint32_t cp) {
  if (cp < 128) return ascii().f[cp] & kN;
  return in_table(unicode_data::kNumber, unicode_data::kNumberCount, cp);
}

bool is_whitespace(uint32_t cp) {
  if (cp < 128) return ascii().f[cp] & kS;
  return in_table(unicode_data::kWhitespace, unicode_data::kWhitespaceCount, cp);
}

const char* unicode_version() {
  return unicode_data::kUnicodeVersion;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_text;
  std::array<int16_t, 324> from_cp;  // code points used are < 0x144
  ByteMap() {
    from_cp.fill(-1);
    // GPT-2's bytes_to_unicode: printable bytes keep their code point, the rest are numbered
    // from U+0100 upwards in byte order.
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = printable(b) ? static_cast<uint32_t>(b) : next++;
      append_utf8(to_text[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) {
  return byte_map().to_text[b];
}

int unicode_to_byte(uint32_t cp) {
  const ByteMap& m = byte_map();
  return cp < m.from_cp.size() ? m.from_cp[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const ByteMap& m = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += m.to_text[static_cast<unsigned char>(c)];
  return out;
}

}  // namespace tritune::unicode
