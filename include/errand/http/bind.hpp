#pragma once
// bind<T>() for HTTP handlers: json::from_json<T> (see errand/json/bind.hpp)
// with its BindError answered as 400 {"error":{"code":"invalid_field",...}}.

#include <string>

#include "errand/http/error.hpp"
#include "errand/json/bind.hpp"

namespace errand::http::detail {

template <class T>
T bind_value(const boost::json::value& v) {
  try {
    return json::from_json<T>(v);
  } catch (const json::BindError& e) {
    throw Error(400, "invalid_field", e.what());
  }
}

}  // namespace errand::http::detail
