#pragma once
// bind<T>() for HTTP handlers: json::from_json<T> (see errand/json/bind.hpp),
// then T's `void validate() const` if it has one (the same hook typed task
// payloads use, so one struct checks its values once for both), with every
// BindError answered as 400 {"error":{"code":"invalid_field",...}}.
//
// Unknown fields are ignored by default (Gin's and encoding/json's behaviour);
// `c.bind<T>(json::Unknown::reject)` makes them a 400 naming each one.

#include <optional>
#include <string>

#include "errand/http/error.hpp"
#include "errand/json/bind.hpp"

namespace errand::http {

// What Context::try_bind<T>() answers: the value, or the 400 error bind<T>()
// would have thrown (Gin's ShouldBind, next to bind's BindJSON).
template <class T>
struct Bound {
  std::optional<T> value;
  std::optional<Error> error;

  explicit operator bool() const noexcept { return value.has_value(); }
  T& operator*() { return *value; }
  const T& operator*() const { return *value; }
  T* operator->() { return &*value; }
  const T* operator->() const { return &*value; }
};

}  // namespace errand::http

namespace errand::http::detail {

template <class T>
T bind_value(const boost::json::value& v, json::Unknown unknown) {
  try {
    T value = json::from_json<T>(v, unknown);
    if constexpr (requires { value.validate(); }) value.validate();
    return value;
  } catch (const json::BindError& e) {
    throw Error(400, "invalid_field", e.what());
  }
}

}  // namespace errand::http::detail
