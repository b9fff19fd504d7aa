#pragma once
// RequestSnapshot is Gin's c.Copy(): what background work may need from a request,
// copied once while the request is live. It is immutable and reference-counted
// (share it as std::shared_ptr<const RequestSnapshot>), so any thread may read it
// after the response has been sent and the connection is gone.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errand/http/values.hpp"
#include "errand/observe/trace_context.hpp"

namespace errand::http {

using Params = std::vector<std::pair<std::string, std::string>>;
using Headers = std::vector<std::pair<std::string, std::string>>;

class RequestSnapshot {
 public:
  RequestSnapshot(std::string method, std::string path, Params params, Headers headers,
                  std::string request_id, observe::TraceContext trace, Values values)
      : method_(std::move(method)),
        path_(std::move(path)),
        params_(std::move(params)),
        headers_(std::move(headers)),
        request_id_(std::move(request_id)),
        trace_(std::move(trace)),
        values_(std::move(values)) {}

  [[nodiscard]] const std::string& method() const { return method_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const Params& params() const { return params_; }
  [[nodiscard]] std::string_view param(std::string_view name) const {
    for (const auto& [k, v] : params_) {
      if (k == name) return v;
    }
    return {};
  }
  // Case-insensitive; only headers that were selected when the snapshot was taken.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
  [[nodiscard]] const Headers& headers() const { return headers_; }
  [[nodiscard]] const std::string& request_id() const { return request_id_; }
  // The request's trace; start child spans from it (trace().child()).
  [[nodiscard]] const observe::TraceContext& trace() const { return trace_; }
  template <class T>
  [[nodiscard]] const T* get(const Key<T>& key) const {
    return values_.get(key);
  }

 private:
  std::string method_;
  std::string path_;
  Params params_;
  Headers headers_;
  std::string request_id_;
  observe::TraceContext trace_;
  Values values_;
};

}  // namespace errand::http
