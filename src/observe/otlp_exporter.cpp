// OTLP/HTTP with the JSON encoding (OTLP 1.x: hex ids, 64-bit integers and
// nanosecond times as strings), posted with libcurl to <endpoint>/v1/traces.
//
// Why not opentelemetry-cpp's OtlpHttpExporter (Debian's 1.19, from
// bookworm-backports): its synchronous Export() returns kSuccess whether or
// not the collector took the spans (exporters/otlp/src/otlp_http_exporter.cc),
// so failures could only be guessed from its log lines, and its generated
// protobuf headers are not packaged to call its HTTP client directly. This
// file is the part we would have used (encoding, POST, retries), ~300 lines
// with no dependency beyond libcurl, which errand has.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <iterator>
#include <mutex>

#include <fmt/format.h>

#include "detail/curl_global.hpp"
#include "detail/retry_after.hpp"
#include "observe/span_pipeline.hpp"

namespace errand::observe::detail {

namespace {

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

// The length of the valid UTF-8 sequence of 2..4 bytes at in[i], or 0:
// overlong forms, surrogates and code points past U+10FFFF are invalid too.
std::size_t utf8_sequence(std::string_view in, std::size_t i) {
  const auto c = static_cast<unsigned char>(in[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
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
  if (n == 0 || i + n >= in.size()) return 0;
  for (std::size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<unsigned char>(in[i + k]);
    if ((cc & 0xC0U) != 0x80U) return 0;
    cp = (cp << 6U) | (cc & 0x3FU);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n + 1;
}

// OTLP/JSON written straight to text (no DOM: the export thread encodes
// tens of thousands of spans a second).
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  // A JSON string. JSON must be UTF-8, and a receiver may refuse a whole
  // batch over one bad byte (an exception's what(), a path or a user agent
  // can hold anything): invalid sequences become U+FFFD.
  void string(std::string_view in) {
    out_.push_back('"');
    std::size_t i = 0;
    while (i < in.size()) {
      const auto c = static_cast<unsigned char>(in[i]);
      if (c >= 0x80) {
        if (const auto n = utf8_sequence(in, i); n > 0) {
          out_.append(in.substr(i, n));
          i += n;
        } else {
          out_ += "\xEF\xBF\xBD";
          ++i;
        }
        continue;
      }
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default:
          if (c < 0x20) {
            fmt::format_to(std::back_inserter(out_), "\\u{:04x}", c);
          } else {
            out_.push_back(static_cast<char>(c));
          }
      }
      ++i;
    }
    out_.push_back('"');
  }
  // "key": then whatever the caller writes.
  void key(std::string_view k) {
    string(k);
    out_.push_back(':');
  }
  void raw(std::string_view text) { out_ += text; }
  void field(std::string_view k, std::string_view v) {
    key(k);
    string(v);
  }
  void nanos(std::string_view k, std::chrono::system_clock::time_point t) {
    // 64-bit integers as strings (proto3 JSON).
    fmt::format_to(
        std::back_inserter(out_), R"("{}":"{}")", k,
        std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  }

  void value(const AttributeValue& v) {
    std::visit(
        [this](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            raw("{\"stringValue\":");
            string(x);
            raw("}");
          } else if constexpr (std::is_same_v<T, bool>) {
            raw(x ? R"({"boolValue":true})" : R"({"boolValue":false})");
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            fmt::format_to(std::back_inserter(out_), R"({{"intValue":"{}"}})", x);
          } else if (std::isfinite(x)) {
            fmt::format_to(std::back_inserter(out_), R"({{"doubleValue":{}}})", x);
          } else {  // proto3 JSON's names for what JSON numbers cannot hold
            raw(std::isnan(x)
                    ? R"({"doubleValue":"NaN"})"
                    : (x > 0 ? R"({"doubleValue":"Infinity"})" : R"({"doubleValue":"-Infinity"})"));
          }
        },
        v);
  }
  void attributes(const std::vector<Attribute>& list) {
    raw("\"attributes\":[");
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0) raw(",");
      raw("{");
      field("key", list[i].key);
      raw(",\"value\":");
      value(list[i].value);
      raw("}");
    }
    raw("]");
  }

 private:
  std::string& out_;
};

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

void encode_span(JsonWriter& w, const SpanData& s) {
  w.raw("{");
  w.field("traceId", s.context.trace_id);
  w.raw(",");
  w.field("spanId", s.context.span_id);
  if (!s.parent_span_id.empty()) {
    w.raw(",");
    w.field("parentSpanId", s.parent_span_id);
  }
  if (!s.context.tracestate.empty()) {
    w.raw(",");
    w.field("traceState", s.context.tracestate);
  }
  w.raw(",");
  w.field("name", s.name);
  w.raw(fmt::format(",\"kind\":{},", kind_number(s.kind)));
  w.nanos("startTimeUnixNano", s.start);
  w.raw(",");
  w.nanos("endTimeUnixNano", s.end);
  w.raw(",");
  w.attributes(s.attributes);
  if (!s.events.empty()) {
    w.raw(",\"events\":[");
    for (std::size_t i = 0; i < s.events.size(); ++i) {
      const auto& e = s.events[i];
      w.raw(i > 0 ? ",{" : "{");
      w.nanos("timeUnixNano", e.at);
      w.raw(",");
      w.field("name", e.name);
      w.raw(",");
      w.attributes(e.attributes);
      w.raw("}");
    }
    w.raw("]");
  }
  if (!s.links.empty()) {
    w.raw(",\"links\":[");
    for (std::size_t i = 0; i < s.links.size(); ++i) {
      const auto& l = s.links[i];
      w.raw(i > 0 ? ",{" : "{");
      w.field("traceId", l.trace_id);
      w.raw(",");
      w.field("spanId", l.span_id);
      if (!l.tracestate.empty()) {
        w.raw(",");
        w.field("traceState", l.tracestate);
      }
      w.raw("}");
    }
    w.raw("]");
  }
  if (s.error) {
    w.raw(R"(,"status":{"code":2,)");
    w.field("message", s.status_message);
    w.raw("}");
  }
  w.raw("}");
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
    // Every request: {"resourceSpans":[{"resource":…,"scopeSpans":[{"scope":…,"spans":[ … ]}]}]}
    JsonWriter w(prefix_);
    w.raw(R"({"resourceSpans":[{"resource":{)");
    w.attributes(resource_of(o));
    w.raw(R"(},"scopeSpans":[{"scope":{"name":"errand")");
#ifdef ERRAND_VERSION
    w.raw(R"(,"version":")" ERRAND_VERSION "\"");
#endif
    w.raw(R"(},"spans":[)");
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
    std::string body = prefix_;
    body.reserve(prefix_.size() + spans.size() * 640);
    JsonWriter w(body);
    for (std::size_t i = 0; i < spans.size(); ++i) {
      if (i > 0) w.raw(",");
      encode_span(w, *spans[i]);
    }
    w.raw("]}]}]}");
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
    if (auto secs = errand::detail::retry_after({data, size * n})) {
      *static_cast<std::optional<std::chrono::seconds>*>(user) = secs;
    }
    return size * n;
  }
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<std::atomic<bool>*>(user)->load() ? 1 : 0;
  }

  Answer post(const std::string& body) {
    std::string reply;
    std::optional<std::chrono::seconds> retry_after;
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
      if (retry_after) a.retry_after = std::min(*retry_after, std::chrono::seconds(5));
    }
    const std::scoped_lock lock(mu_);
    last_error_ = std::move(error);
    return a;
  }

  std::string url_;
  curl_slist* headers_ = nullptr;
  std::chrono::milliseconds timeout_;
  std::string prefix_;    // the request up to its first span
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
