#pragma once
// The CLI's small blocking HTTP client over libcurl. One
// instance per thread. Connection failures throw ClientError with curl's text.

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace errand::cli {

class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpResult {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  // `token`: sent as `Authorization: Bearer <token>` when not empty.
  HttpClient(std::string base_url, std::chrono::milliseconds timeout,
             const std::string& token = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResult request(std::string_view method, std::string_view path, std::string_view body = {});
  // GET `path` as server-sent events: `on_event(event, data)` per event, until
  // the server ends the stream. Returns the HTTP status.
  long follow(std::string_view path,
              const std::function<void(std::string_view event, std::string_view data)>& on_event);

 private:
  std::string base_;
  std::chrono::milliseconds timeout_;
  std::string authorization_;  // the whole header line, or empty
  void* curl_;                 // CURL*
};

}  // namespace errand::cli
