// Chat templates rendered by hand (see tokenizer_chat.h for the exact formats and sources).
#include "model/tokenizer_chat.h"

#include "model/unicode.h"

namespace tritune {

const char kBitnet2B4TChatTemplate[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content "
    "}}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

const char kLlama3ChatTemplate[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::kBitnet2B4T:
      return "bitnet-2b4t";
    case ChatFormat::kLlama3:
      return "llama3";
  }
  return "?";
}

ChatFormat detect_chat_format(std::string_view t) {
  if (t.find("<|start_header_id|>") != std::string_view::npos) return ChatFormat::kLlama3;
  return ChatFormat::kBitnet2B4T;
}

namespace {

// Python's str.isspace(): White_Space plus the information separators U+001C..U+001F.
bool py_isspace(uint32_t cp) {
  return (cp >= 0x1C && cp <= 0x1F) || unicode::is_whitespace(cp);
}

}  // namespace

std::string jinja_trim(std::string_view s) {
  size_t begin = 0, end = s.size();
  // Forward: skip leading spaces.
  while (begin < end) {
    unicode::Decoded d = unicode::decode_utf8(s, begin);
    if (!py_isspace(d.cp)) break;
    begin += d.len;
  }
  // Backward: find the end of the last non-space character by a forward scan (UTF-8 cannot be
  // decoded backwards safely when it may be invalid).
  size_t last_end = begin;
  for (size_t p = begin; p < end;) {
    unicode::Decoded d = unicode::decode_utf8(s, p);
    p += d.len;
    if (!py_isspace(d.cp)) last_end = p;
  }
  return std::string(s.substr(begin, last_end - begin));
}

std::string jinja_capitalize(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    char& c = out[i];
    if (i == 0 && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (i > 0 && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::vector<ChatPiece> render_chat_pieces(ChatFormat f, const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt) {
  std::vector<ChatPiece> out;
  for (const ChatMessage& m : messages) {
    if (f == ChatFormat::kLlama3) {
      out.push_back({"<|start_header_id|>", true});
      out.push_back({m.role, false});
      out.push_back({"<|end_header_id|>", true});
      out.push_back({"\n\n" + jinja_trim(m.content), false});
    } else {
      out.push_back({jinja_capitalize(m.role) + ": " + jinja_trim(m.content), false});
    }
    out.push_back({"<|eot_id|>", true});
  }
  if (add_generation_prompt) {
    if (f == ChatFormat::kLlama3) {
      out.push_back({"<|start_header_id|>", true});
      out.push_back({"assistant", false});
      out.push_back({"<|end_header_id|>", true});
      out.push_back({"\n\n", false});
    } else {
      out.push_back({"Assistant: ", false});
    }
  }
  return out;
}

std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  std::string s;
  for (const ChatPiece& p : render_chat_pieces(f, messages, add_generation_prompt)) s += p.text;
  return s;
}

}  // namespace tritune
