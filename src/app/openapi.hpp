#pragma once
// Internal: docs/openapi.json, embedded at build time (src/app/openapi.cpp.in).

#include <string_view>

namespace errand::app::detail {

[[nodiscard]] std::string_view openapi_json();

}  // namespace errand::app::detail
