// Chat prompt formats for `--chat`: BitNet b1.58 2B4T's own template and the LLaMA-3 header
// template, rendered by hand (no Jinja engine) from a list of (role, content) messages.
//
// BitNet 2B4T (tokenizer_config.json "chat_template" of microsoft/bitnet-b1.58-2B-4T):
//   for each message: role|capitalize + ": " + content|trim + "<|eot_id|>"
//   then, with add_generation_prompt: "Assistant: "
//   e.g. "System: Be brief.<|eot_id|>User: Hi<|eot_id|>Assistant: "
// LLaMA-3:
//   for each message: "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + content|trim +
//   "<|eot_id|>", then "<|start_header_id|>assistant<|end_header_id|>\n\n"
//
// Neither rendering contains BOS: Tokenizer::encode_chat adds it like any encode (the
// templates' bos_token, where present, is that same single BOS).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tritune {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others are rendered the same way)
  std::string content;
};

enum class ChatFormat { kBitnet2B4T, kLlama3 };

const char* chat_format_name(ChatFormat f);  // "bitnet-2b4t", "llama3"

// The Jinja source of each template as published (what make_builtin_vocab stores).
extern const char kBitnet2B4TChatTemplate[];
extern const char kLlama3ChatTemplate[];

// Picks the format for a model's `chat_template` text: the LLaMA-3 header template when it uses
// <|start_header_id|>, otherwise (including an empty or unknown template) BitNet 2B4T's.
ChatFormat detect_chat_format(std::string_view jinja_template);

// A rendered prompt as consecutive pieces. Template pieces (special = true) may contain
// special-token strings to be parsed as tokens; message text (special = false) never is, so a
// user typing "<|eot_id|>" cannot end a turn.
struct ChatPiece {
  std::string text;
  bool special;
};
std::vector<ChatPiece> render_chat_pieces(ChatFormat f, const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt);
// The pieces concatenated (for display and logs).
std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

// Jinja's filters as the templates use them: trim strips Python-isspace characters from both
// ends; capitalize upper-cases the first ASCII letter and lower-cases the rest (ASCII only).
std::string jinja_trim(std::string_view s);
std::string jinja_capitalize(std::string_view s);

}  // namespace tritune
