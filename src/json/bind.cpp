#include "errand/json/bind.hpp"

#include "errand/detail/quote.hpp"

namespace errand::json::detail {

void throw_field_error(const std::string& path, std::string_view what) {
  throw BindError(path, "field '" + path + "' " + std::string(what));
}

std::string member_path(const std::string& path, std::string_view key) {
  auto quoted = errand::detail::quote(key);
  return path.empty() ? quoted : path + "." + quoted;
}

void throw_unknown_fields(const std::string& path, const boost::json::object& obj,
                          const std::string_view* known, std::size_t n_known) {
  constexpr std::size_t named_max = 5;  // a body with 10,000 unknown keys names five
  std::string first;
  std::string names;
  std::size_t n = 0;
  for (const auto& kv : obj) {
    if (std::find(known, known + n_known, kv.key()) != known + n_known) continue;
    if (n == 0) first = member_path(path, kv.key());
    if (n < named_max) names += (n > 0 ? ", '" : "'") + member_path(path, kv.key()) + "'";
    ++n;
  }
  if (n > named_max) names += " and " + std::to_string(n - named_max) + " more";
  std::string expected;
  for (std::size_t i = 0; i < n_known; ++i) {
    expected += (i > 0 ? ", " : "") + std::string(known[i]);
  }
  throw BindError(first, (n == 1 ? "unknown field " : "unknown fields ") + names +
                             (n_known > 0 ? " (known: " + expected + ")" : ""));
}

std::string_view json_kind(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64: return "integer";
    case boost::json::kind::double_: return "number";
    case boost::json::kind::string: return "string";
    case boost::json::kind::array: return "array";
    case boost::json::kind::object: return "object";
  }
  return "value";
}

}  // namespace errand::json::detail
