#pragma once
// quote(text): what an error message may repeat of a client's input. Short
// text comes back whole; longer text is cut to a bounded prefix (at a UTF-8
// character boundary) and says how long the original was, so a 10 KB type
// name or header value never comes back whole in a response or a log line.
// Pure function: safe on any thread.

#include <cstddef>
#include <string>
#include <string_view>

namespace errand::detail {

inline constexpr std::size_t kQuoteMax = 64;

[[nodiscard]] inline std::string quote(std::string_view text, std::size_t max = kQuoteMax) {
  if (text.size() <= max) return std::string(text);
  std::size_t cut = max;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
  std::string out(text.substr(0, cut));
  out += "... (";
  out += std::to_string(text.size());
  out += " bytes)";
  return out;
}

}  // namespace errand::detail
