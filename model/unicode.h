// UTF-8 decoding, Unicode class lookups and the GPT-2 byte-level map, for the tokenizer.
//
// Decoding never fails: a byte that does not start a valid UTF-8 sequence (stray continuation,
// truncated sequence, overlong form, surrogate, > U+10FFFF) decodes to kInvalidCodepoint with
// length 1, so callers can walk arbitrary bytes and keep exact byte offsets (the tokenizer then
// round-trips those bytes through the byte-level map).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/utf8.h"

namespace tritune::unicode {

constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;

struct Decoded {
  uint32_t cp;   // the code point, or kInvalidCodepoint
  uint32_t len;  // bytes consumed (1..4); 1 for an invalid byte
};

// Decodes the sequence starting at s[pos] (pos < s.size()).
Decoded decode_utf8(std::string_view s, size_t pos);
bool is_valid_utf8(std::string_view s);
// Length of the longest prefix of s that does not end inside an incomplete (but so far valid)
// UTF-8 sequence: a streaming printer emits that prefix and keeps the rest for the next token.
size_t utf8_complete_prefix(std::string_view s);

// Classes of the pre-tokenizer regex. kInvalidCodepoint is in none of them.
bool is_letter(uint32_t cp);      // \p{L}
bool is_number(uint32_t cp);      // \p{N}
bool is_whitespace(uint32_t cp);  // \s (White_Space)
// The Unicode version the tables were generated from.
const char* unicode_version();

// GPT-2 byte-level map: every byte value is represented by one printable code point (printable
// Latin-1 bytes map to themselves, the other 68 to U+0100..U+0143; e.g. ' ' -> U+0120 'Ġ').
// byte_to_unicode returns the UTF-8 text of that code point.
const std::string& byte_to_unicode(uint8_t b);
// The byte a code point stands for, or -1 when the code point is not in the map.
int unicode_to_byte(uint32_t cp);
// Maps every byte of `bytes` (the pre-token) to its byte-level text.
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace tritune::unicode
