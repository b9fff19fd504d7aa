#include "detail/retry_after.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace errand::detail {

std::optional<std::chrono::seconds> retry_after(std::string_view line) {
  constexpr std::string_view kName = "retry-after:";
  if (line.size() <= kName.size() ||
      !std::equal(kName.begin(), kName.end(), line.begin(), [](char want, char got) {
        return want == std::tolower(static_cast<unsigned char>(got));
      })) {
    return std::nullopt;
  }
  auto value = line.substr(kName.size());
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!value.empty() && blank(value.front())) value.remove_prefix(1);
  while (!value.empty() && blank(value.back())) value.remove_suffix(1);
  long long seconds = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds(seconds);
}

}  // namespace errand::detail
