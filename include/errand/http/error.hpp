#pragma once
// errand's HTTP error model, decided once (see docs/architecture.md):
//  * handlers report client errors by throwing http::Error (bind<T>() does);
//  * any other exception is a bug in the handler: the recovery middleware (or,
//    without it, the dispatcher itself) answers 500 and logs one line;
//  * every error body has the same shape: {"error":{"code":..,"message":..}}.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace errand::http {

class Error : public std::runtime_error {
 public:
  // `code` is a stable machine-readable token ("invalid_json"); `message` is for people.
  // `retry_after`: sent as a Retry-After header (429, 503).
  Error(int status, std::string code, const std::string& message,
        std::optional<std::chrono::seconds> retry_after = std::nullopt)
      : std::runtime_error(message),
        status_(status),
        code_(std::move(code)),
        retry_after_(retry_after) {}

  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] const std::string& code() const noexcept { return code_; }
  [[nodiscard]] std::optional<std::chrono::seconds> retry_after() const noexcept {
    return retry_after_;
  }

 private:
  int status_;
  std::string code_;
  std::optional<std::chrono::seconds> retry_after_;
};

// {"error":{"code":code,"message":message}}
[[nodiscard]] boost::json::value error_body(std::string_view code, std::string_view message);

}  // namespace errand::http
