// Tests for the LLaMA-3 pre-tokenizer (model/tokenizer_pretok.h) and the Unicode helpers it
// stands on (model/unicode.h). Expected splits are worked out by hand from the regex
//   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
//   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
#include "model/tokenizer_pretok.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "model/unicode.h"

namespace tritune {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(const std::string& s) {
  Pieces out;
  for (std::string_view p : pretokenize_llama3_pieces(s)) out.emplace_back(p);
  return out;
}

TEST(Unicode, Classes) {
  for (uint32_t cp : std::initializer_list<uint32_t>{'a', 'Z', 0xE9u, 0x65E5u, 0x042Fu, 0x05D0u,
                                                     0x00AAu, 0x02B0u, 0x1D400u}) {
    EXPECT_TRUE(unicode::is_letter(cp)) << std::hex << cp;
  }
  for (uint32_t cp : std::initializer_list<uint32_t>{'0', ' ', '!', '_', '\'',
                                                     0x0301u /* combining acute: Mn */, 0x1F600u}) {
    EXPECT_FALSE(unicode::is_letter(cp)) << std::hex << cp;
  }
  // Nd, Nl (Roman numeral twelve), No (superscript two, vulgar fraction one half).
  for (uint32_t cp :
       std::initializer_list<uint32_t>{'7', 0x0663u, 0x216Bu, 0x00B2u, 0x00BDu, 0xFF15u}) {
    EXPECT_TRUE(unicode::is_number(cp)) << std::hex << cp;
  }
  EXPECT_FALSE(unicode::is_number('a'));
  for (uint32_t cp :
       std::initializer_list<uint32_t>{' ', '\t', '\n', '\v', '\f', '\r', 0x85u, 0xA0u, 0x1680u,
                                       0x2003u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(unicode::is_whitespace(cp)) << std::hex << cp;
  }
  // Zero-width space is a format character, U+001C is a separator control: not White_Space.
  for (uint32_t cp :
       std::initializer_list<uint32_t>{'a', 0x200Bu, 0x1Cu, 0xFEFFu, unicode::kInvalidCodepoint}) {
    EXPECT_FALSE(unicode::is_whitespace(cp)) << std::hex << cp;
  }
  EXPECT_FALSE(unicode::is_letter(unicode::kInvalidCodepoint));
  EXPECT_FALSE(unicode::is_number(0x110000));
  EXPECT_FALSE(std::string(unicode::unicode_version()).empty());
}

TEST(Unicode, DecodeRejectsInvalidSequences) {
  struct Case {
    std::string bytes;
    uint32_t cp;
    uint32_t len;
  };
  const Case cases[] = {
      {"A", 'A', 1},
      {"\xC3\xA9", 0xE9, 2},
      {"\xE6\x97\xA5", 0x65E5, 3},
      {"\xF0\x9F\x98\x80", 0x1F600, 4},
      {"\xF4\x8F\xBF\xBF", 0x10FFFF, 4},
      {"\x80", unicode::kInvalidCodepoint, 1},              // stray continuation
      {"\xC0\x80", unicode::kInvalidCodepoint, 1},          // overlong NUL
      {"\xC1\xBF", unicode::kInvalidCodepoint, 1},          // overlong
      {"\xE0\x80\x80", unicode::kInvalidCodepoint, 1},      // overlong 3-byte
      {"\xED\xA0\x80", unicode::kInvalidCodepoint, 1},      // surrogate D800
      {"\xF0\x80\x80\x80", unicode::kInvalidCodepoint, 1},  // overlong 4-byte
      {"\xF4\x90\x80\x80", unicode::kInvalidCodepoint, 1},  // above U+10FFFF
      {"\xF5\x80\x80\x80", unicode::kInvalidCodepoint, 1},
      {"\xE6\x97", unicode::kInvalidCodepoint, 1},  // truncated
      {"\xE6\x97"
       "A",
       unicode::kInvalidCodepoint, 1},
      {"\xFF", unicode::kInvalidCodepoint, 1},
  };
  for (const Case& c : cases) {
    unicode::Decoded d = unicode::decode_utf8(c.bytes, 0);
    EXPECT_EQ(d.cp, c.cp) << c.bytes;
    EXPECT_EQ(d.len, c.len) << c.bytes;
  }
  // Every valid scalar value encodes and decodes back (sampled densely near the boundaries).
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x11000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    unicode::append_utf8(s, cp);
    unicode::Decoded d = unicode::decode_utf8(s, 0);
    ASSERT_EQ(d.cp, cp);
    ASSERT_EQ(d.len, s.size());
  }
  EXPECT_TRUE(unicode::is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(unicode::is_valid_utf8("h\xC3"));
}

TEST(Unicode, CompletePrefixHoldsBackOnlyViableTails) {
  EXPECT_EQ(unicode::utf8_complete_prefix(""), 0u);
  EXPECT_EQ(unicode::utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(unicode::utf8_complete_prefix("ab\xE6"), 2u);
  EXPECT_EQ(unicode::utf8_complete_prefix("ab\xE6\x97"), 2u);
  EXPECT_EQ(unicode::utf8_complete_prefix("ab\xE6\x97\xA5"), 5u);
  EXPECT_EQ(unicode::utf8_complete_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(unicode::utf8_complete_prefix("a\xFF"), 2u);      // never completes: emit
  EXPECT_EQ(unicode::utf8_complete_prefix("a\xE0\x80"), 3u);  // overlong start: emit
  EXPECT_EQ(unicode::utf8_complete_prefix("a\x80"), 2u);
}

TEST(Unicode, ByteLevelMapIsGpt2s) {
  EXPECT_EQ(unicode::byte_to_unicode(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(unicode::byte_to_unicode('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(unicode::byte_to_unicode(0), "\xC4\x80");     // U+0100
  EXPECT_EQ(unicode::byte_to_unicode(0xAD), "\xC5\x83");  // U+0143, the last remapped byte
  EXPECT_EQ(unicode::byte_to_unicode('a'), "a");
  EXPECT_EQ(unicode::byte_to_unicode(0xE9), "\xC3\xA9");  // printable Latin-1 maps to itself
  std::vector<bool> seen(256, false);
  for (int b = 0; b < 256; ++b) {
    const std::string& t = unicode::byte_to_unicode(static_cast<uint8_t>(b));
    unicode::Decoded d = unicode::decode_utf8(t, 0);
    ASSERT_EQ(d.len, t.size());
    ASSERT_EQ(unicode::unicode_to_byte(d.cp), b);
    ASSERT_FALSE(seen[b]);
    seen[b] = true;
  }
  EXPECT_EQ(unicode::unicode_to_byte(0x20), -1);  // a raw space is not a byte-level char
  EXPECT_EQ(unicode::unicode_to_byte(0x144), -1);
  EXPECT_EQ(unicode::bytes_to_byte_level(" a\n"),
            "\xC4\xA0"
            "a\xC4\x8A");
}

TEST(Pretokenize, EmptyInput) {
  EXPECT_TRUE(split("").empty());
}

TEST(Pretokenize, WordsAndLeadingSpace) {
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("Hello, world!"), (Pieces{"Hello", ",", " world", "!"}));
  EXPECT_EQ(split("a_b"), (Pieces{"a", "_b"}));  // one non-letter may lead a word
  EXPECT_EQ(split("$x"), (Pieces{"$x"}));
  EXPECT_EQ(split("$$x"), (Pieces{"$$", "x"}));
}

TEST(Pretokenize, Contractions) {
  EXPECT_EQ(split("I'm"), (Pieces{"I", "'m"}));
  EXPECT_EQ(split("don't"), (Pieces{"don", "'t"}));
  EXPECT_EQ(split("it's"), (Pieces{"it", "'s"}));
  EXPECT_EQ(split("we've"), (Pieces{"we", "'ve"}));
  EXPECT_EQ(split("they're"), (Pieces{"they", "'re"}));
  EXPECT_EQ(split("she'll"), (Pieces{"she", "'ll"}));
  EXPECT_EQ(split("he'd"), (Pieces{"he", "'d"}));
  // Case-insensitive, including mixed case.
  EXPECT_EQ(split("THEY'RE"), (Pieces{"THEY", "'RE"}));
  EXPECT_EQ(split("SHE'Ll"), (Pieces{"SHE", "'Ll"}));
  EXPECT_EQ(split("IT'S"), (Pieces{"IT", "'S"}));
  EXPECT_EQ(split("I'M"), (Pieces{"I", "'M"}));
  // The contraction wins even where it cuts a word; a non-contraction quote leads the word.
  EXPECT_EQ(split("'sun"), (Pieces{"'s", "un"}));
  EXPECT_EQ(split("'x"), (Pieces{"'x"}));
  EXPECT_EQ(split("'lx"), (Pieces{"'lx"}));
  EXPECT_EQ(split("a'"), (Pieces{"a", "'"}));
  EXPECT_EQ(split("''s"), (Pieces{"''", "s"}));  // a quote run is punctuation
  // Every one-letter contraction cuts a longer word, in either case.
  EXPECT_EQ(split("'dog"), (Pieces{"'d", "og"}));
  EXPECT_EQ(split("'Dog"), (Pieces{"'D", "og"}));
  EXPECT_EQ(split("'time"), (Pieces{"'t", "ime"}));
  EXPECT_EQ(split("'more"), (Pieces{"'m", "ore"}));
  EXPECT_EQ(split("'very"), (Pieces{"'ve", "ry"}));
  EXPECT_EQ(split("'rest"), (Pieces{"'re", "st"}));
  EXPECT_EQ(split("'llama"), (Pieces{"'ll", "ama"}));
}

TEST(Pretokenize, NumbersInGroupsOfUpToThree) {
  EXPECT_EQ(split("1"), (Pieces{"1"}));
  EXPECT_EQ(split("12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(split("1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("a1b22"), (Pieces{"a", "1", "b", "22"}));
  EXPECT_EQ(split("3.14"), (Pieces{"3", ".", "14"}));
  EXPECT_EQ(split(" 123"), (Pieces{" ", "123"}));            // numbers do not take a leading space
  EXPECT_EQ(split("x\xC2\xB2"), (Pieces{"x", "\xC2\xB2"}));  // superscript two is \p{N}
  // Arabic-Indic digits are Nd: grouped like ASCII digits.
  EXPECT_EQ(split("\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6"),
            (Pieces{"\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}));
}

TEST(Pretokenize, PunctuationRunsKeepTrailingNewlines) {
  EXPECT_EQ(split("Hi!!!\n\nYes"), (Pieces{"Hi", "!!!\n\n", "Yes"}));
  EXPECT_EQ(split("a ...\r\nb"), (Pieces{"a", " ...\r\n", "b"}));
  EXPECT_EQ(split("x = y;"), (Pieces{"x", " =", " y", ";"}));
  EXPECT_EQ(split("a  !"), (Pieces{"a", " ", " !"}));
  EXPECT_EQ(split("!\n \n"), (Pieces{"!\n", " \n"}));
}

TEST(Pretokenize, WhitespaceRules) {
  EXPECT_EQ(split("a  b"), (Pieces{"a", " ", " b"}));  // \s+(?!\S): all but the last
  EXPECT_EQ(split("a    b"), (Pieces{"a", "   ", " b"}));
  EXPECT_EQ(split("a  "), (Pieces{"a", "  "}));  // trailing run kept whole
  EXPECT_EQ(split("  "), (Pieces{"  "}));
  EXPECT_EQ(split("\t\tx"), (Pieces{"\t", "\tx"}));
  EXPECT_EQ(split("a\nb"), (Pieces{"a", "\n", "b"}));
  EXPECT_EQ(split("a \n b"), (Pieces{"a", " \n", " b"}));  // \s*[\r\n]+ up to the last newline
  EXPECT_EQ(split("x\r\n\r\ny"), (Pieces{"x", "\r\n\r\n", "y"}));
  EXPECT_EQ(split("a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(split("a\n \t\n  "), (Pieces{"a", "\n \t\n", "  "}));
  EXPECT_EQ(split(" 1"), (Pieces{" ", "1"}));
}

TEST(Pretokenize, NonAsciiLettersAndSpaces) {
  EXPECT_EQ(split("h\xC3\xA9llo w\xC3\xB6rld"), (Pieces{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  EXPECT_EQ(split("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"),
            (Pieces{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"}));  // 日本語: one run of Lo
  EXPECT_EQ(split("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80"),
            (Pieces{"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
                    " \xD0\xBC\xD0\xB8\xD1\x80"}));  // Привет мир
  // A combining mark (Mn) is not a letter: it splits "é" written as e + U+0301.
  EXPECT_EQ(split("e\xCC\x81t"), (Pieces{"e", "\xCC\x81t"}));
  // NBSP and ideographic space are \s but not ' '.
  EXPECT_EQ(split("a\xC2\xA0"
                  "b"),
            (Pieces{"a",
                    "\xC2\xA0"
                    "b"}));
  EXPECT_EQ(split("a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (Pieces{"a", "\xE3\x80\x80",
                    "\xE3\x80\x80"
                    "b"}));
}

TEST(Pretokenize, EmojiAndSymbols) {
  EXPECT_EQ(split("hi \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"),
            (Pieces{"hi", " \xF0\x9F\x98\x80\xF0\x9F\x98\x80!"}));
  EXPECT_EQ(split("\xF0\x9F\x91\x8Dok"), (Pieces{"\xF0\x9F\x91\x8Dok"}));  // 👍 leads "ok"
}

TEST(Pretokenize, InvalidUtf8BytesAreOtherCharacters) {
  EXPECT_EQ(split("a\xFF"
                  "b"),
            (Pieces{"a",
                    "\xFF"
                    "b"}));
  EXPECT_EQ(split("\xFF\xFE"), (Pieces{"\xFF\xFE"}));
  EXPECT_EQ(split("x \xE6\x97"), (Pieces{"x", " \xE6\x97"}));
  EXPECT_EQ(split("\xC0\x80"
                  "1"),
            (Pieces{"\xC0\x80", "1"}));
}

TEST(Pretokenize, SpansCoverArbitraryBytesExactly) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a",
                                  "Z",
                                  " ",
                                  "\n",
                                  "\r",
                                  "\t",
                                  "'",
                                  "s",
                                  "1",
                                  "!",
                                  "\xC3\xA9",
                                  "\xE6\x97\xA5",
                                  "\xF0\x9F\x98\x80",
                                  "\xC2\xA0",
                                  "\xFF",
                                  "\x80",
                                  "\xE6"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s;
    int len = static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) {
      if (rng() % 4 == 0) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += alphabet[rng() % (sizeof(alphabet) / sizeof(alphabet[0]))];
      }
    }
    size_t pos = 0;
    for (const ByteSpan& sp : pretokenize_llama3(s)) {
      ASSERT_EQ(sp.begin, pos);
      ASSERT_GT(sp.end, sp.begin);
      pos = sp.end;
    }
    ASSERT_EQ(pos, s.size());
  }
}

}  // namespace
}  // namespace tritune
