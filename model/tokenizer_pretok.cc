// Hand-written matcher for the LLaMA-3 pre-tokenizer regex (see tokenizer_pretok.h). Each
// alternative is tried in the regex's order at the current position; the first that matches
// wins, which is what a backtracking engine does for this pattern.
#include "model/tokenizer_pretok.h"

#include <cstdint>

#include "model/unicode.h"

namespace tritune {
namespace {

enum : uint8_t {
  kLetter = 1,
  kNumber = 2,
  kSpace = 4,    // \s
  kNewline = 8,  // \r or \n (also kSpace)
};

struct Cpt {
  uint32_t cp;  // code point, or unicode::kInvalidCodepoint for a stray byte
  uint8_t flags;
  size_t offset;  // byte offset of the first byte
};

uint8_t classify(uint32_t cp) {
  if (cp == unicode::kInvalidCodepoint) return 0;
  if (cp == '\r' || cp == '\n') return kSpace | kNewline;
  uint8_t f = 0;
  if (unicode::is_letter(cp)) f |= kLetter;
  if (unicode::is_number(cp)) f |= kNumber;
  if (unicode::is_whitespace(cp)) f |= kSpace;
  return f;
}

uint32_t ascii_lower(uint32_t cp) {
  return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

}  // namespace

std::vector<ByteSpan> pretokenize_llama3(std::string_view text) {
  std::vector<Cpt> c;
  c.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    unicode::Decoded d = unicode::decode_utf8(text, pos);
    c.push_back({d.cp, classify(d.cp), pos});
    pos += d.len;
  }
  const size_t n = c.size();
  auto has = [&](size_t i, uint8_t f) { return i < n && (c[i].flags & f) != 0; };
  auto off = [&](size_t i) { return i < n ? c[i].offset : text.size(); };

  std::vector<ByteSpan> out;
  size_t i = 0;
  auto emit = [&](size_t end) {
    out.push_back({off(i), off(end)});
    i = end;
  };
  while (i < n) {
    const uint32_t cp = c[i].cp;

    // 1. Contractions: 's 't 're 've 'm 'll 'd (ASCII case-insensitive).
    if (cp == '\'' && i + 1 < n) {
      uint32_t a = ascii_lower(c[i + 1].cp);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        emit(i + 2);
        continue;
      }
      if (i + 2 < n) {
        uint32_t b = ascii_lower(c[i + 2].cp);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          emit(i + 3);
          continue;
        }
      }
    }

    // 2. [^\r\n\p{L}\p{N}]?\p{L}+ : an optional non-letter/number/newline, then letters.
    {
      size_t j = i;
      if (!has(i, kLetter | kNumber | kNewline) && has(i + 1, kLetter)) j = i + 1;
      if (has(j, kLetter)) {
        size_t k = j;
        while (has(k, kLetter)) ++k;
        emit(k);
        continue;
      }
    }

    // 3. \p{N}{1,3}
    if (has(i, kNumber)) {
      size_t k = i;
      while (k - i < 3 && has(k, kNumber)) ++k;
      emit(k);
      continue;
    }

    // 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*' : punctuation/symbol runs with an optional leading space
    //    and trailing newlines.
    {
      size_t j = cp == ' ' ? i + 1 : i;
      if (j < n && !has(j, kSpace | kLetter | kNumber)) {
        size_t k = j;
        while (k < n && !has(k, kSpace | kLetter | kNumber)) ++k;
        while (has(k, kNewline)) ++k;
        emit(k);
        continue;
      }
    }

    // 5-7. Whitespace runs.
    if (has(i, kSpace)) {
      size_t k = i;
      size_t last_newline = n;  // none
      while (has(k, kSpace)) {
        if (has(k, kNewline)) last_newline = k;
        ++k;
      }
      if (last_newline != n) {  // 5. \s*[\r\n]+ : up to and including the last newline
        emit(last_newline + 1);
      } else if (k == n) {  // 6. \s+(?!\S) at the end of the text: the whole run
        emit(k);
      } else if (k - i >= 2) {  // 6. before a non-space: all but the last (it joins the word)
        emit(k - 1);
      } else {  // 7. \s+ : a single space before a non-space that no other rule took
        emit(k);
      }
      continue;
    }

    // Unreachable for the classes above (every character matches some alternative); kept so
    // the loop always advances.
    emit(i + 1);
  }
  return out;
}

std::vector<std::string_view> pretokenize_llama3_pieces(std::string_view text) {
  std::vector<std::string_view> out;
  for (const ByteSpan& s : pretokenize_llama3(text)) {
    out.push_back(text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

}  // namespace tritune
