#include "errand/json/bind.hpp"

namespace errand::json::detail {

void throw_field_error(const std::string& path, std::string_view what) {
  throw BindError(path, "field '" + path + "' " + std::string(what));
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
