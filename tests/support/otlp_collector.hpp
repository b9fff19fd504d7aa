#pragma once
// A stand-in OTLP/HTTP collector on 127.0.0.1 (errand's own server): keeps
// every span it is sent, as the JSON errand posts, and can refuse the first
// requests to exercise retries.

#include <boost/json.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "support/http_client.hpp"

namespace errand::test {

// A collector: keeps every span it is sent; answers `status` (and a
// Retry-After of 0) for the first `failures` requests.
class Collector {
 public:
  explicit Collector(int failures = 0, int status = 503) : failures_(failures), status_(status) {
    server_.router().post("/v1/traces", [this](http::Context& c) {
      const std::scoped_lock lock(mu_);
      ++requests_;
      if (requests_ <= failures_) {
        c.set_header("Retry-After", "0");
        c.error(status_, "busy", "try again");
        return;
      }
      content_type_ = std::string(c.header("content-type").value_or(""));
      const auto body = boost::json::parse(c.body()).as_object();
      resource_ = body.at("resourceSpans").at(0).at("resource").as_object();
      for (const auto& span :
           body.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").as_array()) {
        spans_.push_back(span.as_object());
      }
      c.json(200, boost::json::object{});
    });
    server_.start();
  }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_.port());
  }
  std::vector<boost::json::object> spans() const {
    const std::scoped_lock lock(mu_);
    return spans_;
  }
  int requests() const {
    const std::scoped_lock lock(mu_);
    return requests_;
  }
  boost::json::object resource() const {
    const std::scoped_lock lock(mu_);
    return resource_;
  }
  std::string content_type() const {
    const std::scoped_lock lock(mu_);
    return content_type_;
  }

 private:
  test::TestServer server_;
  mutable std::mutex mu_;
  int failures_;
  int status_;
  int requests_ = 0;
  std::vector<boost::json::object> spans_;
  boost::json::object resource_;
  std::string content_type_;
};

// The value of a span's (or resource's) attribute `key` ({"stringValue": ...}), or null.
inline boost::json::value attribute(const boost::json::object& span, std::string_view key) {
  for (const auto& a : span.at("attributes").as_array()) {
    if (a.at("key").as_string() == key) return a.at("value");
  }
  return nullptr;
}

}  // namespace errand::test
