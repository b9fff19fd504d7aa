// OTLP/HTTP with the JSON encoding (OTLP 1.x: hex ids, 64-bit integers and
// nanosecond times as strings), posted with libcurl to <endpoint>/v1/traces.
//
// Why not opentelemetry-cpp's OtlpHttpExporter (Debian's 1.19, from
// bookworm-backports): its synchronous Export() returns kSuccess whether or
// not the collector took the spans (exporters/otlp/src/otlp_http_exporter.cc),
// so failures could only be guessed from its log lines, and its generated
// protobuf headers are not packaged to call its HTTP client directly. This
// file is the part we would have used (encoding, POST, retries), ~200 lines
// with no dependency beyond libcurl and Boost.JSON, which errand has.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "detail/curl_global.hpp"
#include "observe/span_pipeline.hpp"

namespace errand::observe::detail {

namespace {

namespace json = boost::json;

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES) with
// percent-encoded values decoded, as the specification says; members without
// "=" or with an empty key are skipped.
std::vector<std::pair<std::string, std::string>> key_values(std::string_view list) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!list.empty()) {
    const auto comma = std::find(list.begin(), list.end(), ',');
    const std::string_view member(list.begin(), comma);
    list.remove_prefix(static_cast<std::size_t>(comma - list.begin()) +
                       (comma == list.end() ? 0 : 1));
    const auto eq = std::find(member.begin(), member.end(), '=');
    if (eq == member.end()) continue;
    std::string key = trim(std::string_view(member.begin(), eq));
    const std::string raw = trim(std::string_view(eq + 1, member.end()));
    std::string value;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      unsigned byte = 0;
      if (raw[i] == '%' && i + 2 < raw.size() &&
          std::from_chars(raw.data() + i + 1, raw.data() + i + 3, byte, 16).ptr ==
              raw.data() + i + 3) {
        value.push_back(static_cast<char>(byte));
        i += 2;
      } else {
        value.push_back(raw[i]);
      }
    }
    if (!key.empty()) out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// JSON must be UTF-8, and a receiver may refuse a whole batch over one bad
// byte: an exception's what(), a path or a user agent can hold anything.
// Invalid sequences become U+FFFD.
std::string utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1FU;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0FU;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07U;
    }
    bool ok = n > 0 && i + n < in.size();
    for (std::size_t k = 1; ok && k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      ok = (cc & 0xC0U) == 0x80U;
      cp = (cp << 6U) | (cc & 0x3FU);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
    ok = ok && !(n == 2 && cp < 0x800) && !(n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) &&
         !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(in.substr(i, n + 1));
      i += n + 1;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

json::object any_value(const AttributeValue& v) {
  return std::visit(
      [](const auto& x) -> json::object {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return {{"stringValue", utf8(x)}};
        } else if constexpr (std::is_same_v<T, bool>) {
          return {{"boolValue", x}};
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return {{"intValue", std::to_string(x)}};  // int64 as a string (proto3 JSON)
        } else if (std::isfinite(x)) {
          return {{"doubleValue", x}};
        } else {  // proto3 JSON's names for what JSON numbers cannot hold
          return {{"doubleValue", std::isnan(x) ? "NaN" : (x > 0 ? "Infinity" : "-Infinity")}};
        }
      },
      v);
}

json::array attributes(const std::vector<Attribute>& list) {
  json::array out;
  out.reserve(list.size());
  for (const auto& a : list)
    out.push_back(json::object{{"key", a.key}, {"value", any_value(a.value)}});
  return out;
}

std::string nanos(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

int kind_number(SpanKind k) {  // OTLP's SpanKind: 0 is "unspecified"
  switch (k) {
    case SpanKind::internal: return 1;
    case SpanKind::server: return 2;
    case SpanKind::client: return 3;
    case SpanKind::producer: return 4;
    case SpanKind::consumer: return 5;
  }
  return 1;
}

json::object encode_span(const SpanData& s) {
  json::object o{{"traceId", s.context.trace_id},
                 {"spanId", s.context.span_id},
                 {"name", utf8(s.name)},
                 {"kind", kind_number(s.kind)},
                 {"startTimeUnixNano", nanos(s.start)},
                 {"endTimeUnixNano", nanos(s.end)},
                 {"attributes", attributes(s.attributes)}};
  if (!s.parent_span_id.empty()) o.emplace("parentSpanId", s.parent_span_id);
  if (!s.context.tracestate.empty()) o.emplace("traceState", s.context.tracestate);
  if (!s.events.empty()) {
    json::array events;
    for (const auto& e : s.events) {
      events.push_back(json::object{{"timeUnixNano", nanos(e.at)},
                                    {"name", e.name},
                                    {"attributes", attributes(e.attributes)}});
    }
    o.emplace("events", std::move(events));
  }
  if (!s.links.empty()) {
    json::array links;
    for (const auto& l : s.links) {
      json::object link{{"traceId", l.trace_id}, {"spanId", l.span_id}};
      if (!l.tracestate.empty()) link.emplace("traceState", l.tracestate);
      links.push_back(std::move(link));
    }
    o.emplace("links", std::move(links));
  }
  if (s.error) o.emplace("status", json::object{{"code", 2}, {"message", utf8(s.status_message)}});
  return o;
}

// The resource: service.name (the option, else OTEL_RESOURCE_ATTRIBUTES',
// else "errand"), service.instance.id (the node), service.version and the
// telemetry.sdk.* attributes, then the configured resource attributes.
std::vector<Attribute> resource_of(const TracingOptions& o) {
  std::vector<Attribute> out;
  auto put = [&out](std::string key, std::string value) {
    auto it =
        std::find_if(out.begin(), out.end(), [&](const Attribute& a) { return a.key == key; });
    if (it != out.end()) {
      it->value = std::move(value);
    } else {
      out.push_back({std::move(key), std::move(value)});
    }
  };
  put("service.name", "errand");
  if (!o.service_instance.empty()) put("service.instance.id", o.service_instance);
#ifdef ERRAND_VERSION
  put("service.version", ERRAND_VERSION);
  put("telemetry.sdk.version", ERRAND_VERSION);
#endif
  put("telemetry.sdk.name", "errand");
  put("telemetry.sdk.language", "cpp");
  for (auto& [k, v] : key_values(o.resource_attributes)) put(std::move(k), std::move(v));
  if (!o.service_name.empty()) put("service.name", o.service_name);
  return out;
}

class OtlpHttpExporter final : public SpanExporter {
 public:
  explicit OtlpHttpExporter(const TracingOptions& o) : timeout_(o.export_timeout) {
    errand::detail::ensure_curl();
    if (!o.traces_endpoint.empty()) {
      url_ = o.traces_endpoint;
    } else {
      url_ = o.endpoint;
      while (!url_.empty() && url_.back() == '/') url_.pop_back();
      url_ += "/v1/traces";
    }
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    for (const auto& [k, v] : key_values(o.headers)) {
      headers_ = curl_slist_append(headers_, fmt::format("{}: {}", k, v).c_str());
    }
    resource_ = json::object{{"attributes", attributes(resource_of(o))}};
#ifdef ERRAND_VERSION
    scope_ = json::object{{"name", "errand"}, { "version", ERRAND_VERSION }};
#else
    scope_ = json::object{{"name", "errand"}};
#endif
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw std::runtime_error("libcurl could not start");
  }

  ~OtlpHttpExporter() override {
    curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
  }
  OtlpHttpExporter(const OtlpHttpExporter&) = delete;
  OtlpHttpExporter& operator=(const OtlpHttpExporter&) = delete;

  bool export_spans(SpanBatch& spans) override {
    json::array encoded;
    encoded.reserve(spans.size());
    for (const auto& s : spans) encoded.push_back(encode_span(*s));
    const std::string body = json::serialize(json::object{
        {"resourceSpans",
         json::array{json::object{
             {"resource", resource_},
             {"scopeSpans",
              json::array{json::object{{"scope", scope_}, {"spans", std::move(encoded)}}}}}}}});
    // 429, 502, 503, 504 and connection trouble are tried again (the OTLP
    // specification's retryable failures): three calls in all, 1 s then 2 s
    // apart, or as the collector's Retry-After asks, up to 5 s.
    std::chrono::milliseconds backoff{1000};
    for (int call = 1;; ++call) {
      const Answer a = post(body);
      if (a.ok) return true;
      if (!a.retryable || call == 3 || cancelled_.load()) return false;
      const auto wait = std::min(a.retry_after.value_or(backoff), std::chrono::milliseconds(5000));
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [&] { return cancelled_.load(); })) return false;
      backoff *= 2;
    }
  }

  [[nodiscard]] std::string last_error() const override {
    const std::scoped_lock lock(mu_);
    return last_error_;
  }

  // From another thread: cuts a call or a wait short.
  void shutdown() override {
    {
      const std::scoped_lock lock(mu_);
      cancelled_.store(true);
    }
    cv_.notify_all();
  }

 private:
  struct Answer {
    bool ok = false;
    bool retryable = false;
    std::optional<std::chrono::milliseconds> retry_after;
  };

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* body = static_cast<std::string*>(user);
    const std::size_t len = size * n;
    if (body->size() < 1024) body->append(data, std::min(len, 1024 - body->size()));
    return len;
  }
  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    const std::string_view line(data, size * n);
    constexpr std::string_view kName = "retry-after:";
    if (line.size() > kName.size()) {
      std::string lower(line.substr(0, kName.size()));
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == kName) {
        const std::string value = trim(line.substr(kName.size()));
        long seconds = -1;
        std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (seconds >= 0) *static_cast<long*>(user) = seconds;
      }
    }
    return size * n;
  }
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<std::atomic<bool>*>(user)->load() ? 1 : 0;
  }

  Answer post(const std::string& body) {
    std::string reply;
    long retry_after = -1;
    curl_easy_reset(curl_);  // keeps the connection for the next call
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "errand-otlp");
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &retry_after);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, &cancelled_);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    const CURLcode rc = curl_easy_perform(curl_);
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    Answer a;
    if (rc == CURLE_OK && status >= 200 && status < 300) {
      a.ok = true;
      return a;
    }
    std::string error;
    if (rc != CURLE_OK) {
      error = fmt::format("POST {}: {}", url_, curl_easy_strerror(rc));
      // The collector unreachable or slow: worth another call. A bad URL, an
      // unsupported protocol or a TLS refusal would fail the same way again.
      a.retryable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                    rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR ||
                    rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
    } else {
      error = fmt::format("POST {} answered {}: {}", url_, status, reply);
      a.retryable = status == 429 || status == 502 || status == 503 || status == 504;
      if (retry_after >= 0) a.retry_after = std::chrono::seconds(std::min(retry_after, 5L));
    }
    const std::scoped_lock lock(mu_);
    last_error_ = std::move(error);
    return a;
  }

  std::string url_;
  curl_slist* headers_ = nullptr;
  std::chrono::milliseconds timeout_;
  json::object resource_;
  json::object scope_;
  CURL* curl_ = nullptr;  // the export thread's

  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string last_error_;
};

}  // namespace

std::unique_ptr<SpanExporter> make_otlp_exporter(const TracingOptions& options) {
  return std::make_unique<OtlpHttpExporter>(options);
}

}  // namespace errand::observe::detail
