// http.request: webhook delivery over libcurl.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "app/curl_stop.hpp"
#include "detail/curl_global.hpp"
#include "detail/retry_after.hpp"
#include "errand/app/builtin_tasks.hpp"
#include "errand/detail/quote.hpp"

namespace errand::app {

struct HttpRequestTask {
  std::optional<std::string> method;
  std::string url;
  std::optional<std::map<std::string, std::string>> headers;
  std::optional<std::string> body;
  std::optional<std::int64_t> timeout_ms;

  // Checked at enqueue time: a request that can never be sent is refused then.
  void validate() const {
    const std::string m = method.value_or("POST");
    static constexpr std::array<std::string_view, 6> kMethods = {"GET",   "POST",   "PUT",
                                                                 "PATCH", "DELETE", "HEAD"};
    if (std::find(kMethods.begin(), kMethods.end(), m) == kMethods.end()) {
      throw json::BindError("method",
                            "field 'method' must be GET, POST, PUT, PATCH, DELETE or HEAD");
    }
    if (!(url.starts_with("http://") || url.starts_with("https://")) || url.size() > 8192 ||
        url.find_first_of(" \r\n\t") != std::string::npos) {
      throw json::BindError("url", "field 'url' must be an http:// or https:// URL");
    }
    for (const auto& [name, value] : headers.value_or(std::map<std::string, std::string>{})) {
      const bool bad_name =
          name.empty() || std::any_of(name.begin(), name.end(), [](unsigned char c) {
            return std::isalnum(c) == 0 &&
                   std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) ==
                       std::string_view::npos;
          });
      if (bad_name)
        throw json::BindError("headers", "field 'headers' has an invalid header name '" +
                                             errand::detail::quote(name) + "'");
      if (value.find_first_of("\r\n") != std::string::npos ||
          value.find('\0') != std::string::npos) {
        const auto field = "headers." + errand::detail::quote(name);
        throw json::BindError(field, "field '" + field + "' must not contain CR, LF or NUL");
      }
    }
    if (timeout_ms && (*timeout_ms < 1 || *timeout_ms > 300'000)) {
      throw json::BindError("timeout_ms", "field 'timeout_ms' must be within 1..300000");
    }
  }
};
BOOST_DESCRIBE_STRUCT(HttpRequestTask, (), (method, url, headers, body, timeout_ms))

namespace {

constexpr std::size_t kKeptBody = 4096;  // of the response, stored in the result

struct Transfer {
  std::string body;  // the first kKeptBody bytes
  std::size_t total = 0;
  std::optional<std::chrono::seconds> retry_after;
  const tasks::TaskContext* task = nullptr;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * n;
  if (t->body.size() < kKeptBody) t->body.append(data, std::min(bytes, kKeptBody - t->body.size()));
  t->total += bytes;
  return bytes;  // the rest is read and dropped: memory stays bounded
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  // An HTTP date is not read: the backoff policy decides then.
  if (auto secs = errand::detail::retry_after({data, size * n})) {
    t->retry_after = std::min(*secs, std::chrono::seconds(3600));
  }
  return size * n;
}

}  // namespace

namespace {

// Where a URL points: the host (IPv6 without brackets) and port, and the
// breaker's key, "example.org:8443" for "https://u:p@Example.org:8443/x?y" —
// never the credentials, which would reach /metrics, /v1/circuits and spans.
struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::string key;
};

Target target_of(const std::string& url) {
  Target t;
  const auto u = boost::urls::parse_uri(url);
  if (u) {
    t.host = u->host_address();  // percent-decoded; IPv6 without brackets
    t.port = u->has_port() ? u->port_number() : (u->scheme() == "https" ? 443 : 80);
    t.key = std::string(u->encoded_host_and_port());
  } else {  // not a URI: the whole authority, without what an @ precedes
    const auto start = url.find("://") == std::string::npos ? 0 : url.find("://") + 3;
    const auto end = url.find_first_of("/?#", start);
    t.key = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (const auto at = t.key.rfind('@'); at != std::string::npos) t.key.erase(0, at + 1);
    t.host = t.key;
  }
  std::transform(t.key.begin(), t.key.end(), t.key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return t;
}

// What a span may show of a URL: not its credentials.
std::string without_userinfo(const std::string& url) {
  const auto u = boost::urls::parse_uri(url);
  if (!u) return target_of(url).key;  // the authority alone, as the breaker names it
  boost::urls::url shown(*u);
  return std::string(shown.remove_userinfo().buffer());
}

int jitter_ms() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return std::uniform_int_distribution<int>(0, 999)(rng);
}

guard::CircuitBreaker::TimePoint wall_now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

}  // namespace

std::shared_ptr<guard::CircuitBreakers> register_http_request(
    tasks::Runtime& runtime, observe::Registry* metrics, guard::CircuitBreaker::Options breaker) {
  errand::detail::ensure_curl();
  auto breakers = std::make_shared<guard::CircuitBreakers>(breaker);
  if (metrics != nullptr) {
    metrics->gauge_callback(
        "circuit_state", "http.request circuit breaker per target: 0 closed, 1 open, 2 half-open",
        {"target"}, [breakers] {
          observe::Registry::Samples s;
          for (const auto& t : breakers->states(wall_now())) {
            s.push_back({{t.target}, static_cast<double>(t.state)});
          }
          return s;
        });
  }
  runtime.handle<HttpRequestTask>(
      "http.request",
      [breakers](tasks::TaskContext& t, const HttpRequestTask& in) -> tasks::Outcome {
        const std::string method = in.method.value_or("POST");
        const Target where = target_of(in.url);
        const std::string& target = where.key;
        guard::CircuitBreaker* circuit = breakers->get(target);
        if (circuit != nullptr && !circuit->allow(wall_now())) {
          // Wait for the probe without using an attempt: a receiver that is
          // down delays its deliveries instead of exhausting them. The jitter
          // spreads the waiting tasks out over the second after the probe.
          const auto wait = std::max<std::chrono::milliseconds>(circuit->retry_in(wall_now()),
                                                                std::chrono::seconds(1)) +
                            std::chrono::milliseconds(jitter_ms());
          return tasks::Outcome::snooze(
              wait, fmt::format("circuit open for {}: waiting for its probe", target));
        }
        CURL* c = curl_easy_init();
        if (c == nullptr) return tasks::Outcome::retry("libcurl could not start");
        // The call's own span: the receiver continues the trace under it.
        auto span = t.start_span(method, observe::SpanKind::client);
        if (span.recording()) {
          span.set("http.request.method", method)
              .set("url.full", without_userinfo(in.url))
              .set("server.address", where.host);
          if (where.port != 0) span.set("server.port", where.port);
        }
        Transfer x;
        x.task = &t;
        curl_slist* headers = nullptr;
        bool has_content_type = false;
        for (const auto& [name, value] :
             in.headers.value_or(std::map<std::string, std::string>{})) {
          std::string lower = name;
          std::transform(lower.begin(), lower.end(), lower.begin(),
                         [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
          // Ours win: one trace end to end.
          if (lower == "traceparent" || lower == "tracestate") continue;
          has_content_type = has_content_type || lower == "content-type";
          std::string line = name;
          line += ": ";
          line += value;
          headers = curl_slist_append(headers, line.c_str());
        }
        if (in.body && !has_content_type) {
          headers = curl_slist_append(headers, "Content-Type: application/json");
        }
        headers =
            curl_slist_append(headers, ("traceparent: " + span.context().to_traceparent()).c_str());
        if (!span.context().tracestate.empty()) {
          headers =
              curl_slist_append(headers, ("tracestate: " + span.context().tracestate).c_str());
        }
        headers = curl_slist_append(headers, ("X-Errand-Task-Id: " + t.id()).c_str());
        curl_easy_setopt(c, CURLOPT_URL, in.url.c_str());
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
        if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "errand/" ERRAND_VERSION);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(in.timeout_ms.value_or(10'000)));
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_when_stopped<Transfer>);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        if (in.body) {
          curl_easy_setopt(c, CURLOPT_POSTFIELDS, in.body->data());
          curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(in.body->size()));
        }
        const CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        if (span.recording()) {
          if (rc != CURLE_OK) {
            span.set("error.type", curl_easy_strerror(rc)).set_error(curl_easy_strerror(rc));
          } else {
            span.set("http.response.status_code", status);
            if (status >= 400) span.set("error.type", std::to_string(status));
            if (status >= 400) span.set_error(fmt::format("HTTP {}", status));
          }
        }
        span.end();

        if (rc == CURLE_ABORTED_BY_CALLBACK) {
          if (circuit != nullptr) circuit->abandon();
          return tasks::Outcome::cancelled();
        }
        const bool target_failed = rc != CURLE_OK || status == 429 || status >= 500;
        if (circuit != nullptr) target_failed ? circuit->failure(wall_now()) : circuit->success();
        if (rc != CURLE_OK) {  // connect error, timeout, TLS ...: worth another try
          return tasks::Outcome::retry(
              fmt::format("{} {}: {}", method, in.url, curl_easy_strerror(rc)));
        }
        boost::json::object result{{"status", status}, {"body", x.body}, {"bytes", x.total}};
        const std::string summary = fmt::format("{} {} answered {}", method, in.url, status);
        if (status >= 200 && status < 300) return tasks::Outcome::done(std::move(result));
        if (status == 429 || status >= 500) {  // the receiver may recover
          std::optional<std::chrono::milliseconds> delay;
          if (x.retry_after)
            delay = std::min<std::chrono::milliseconds>(*x.retry_after, std::chrono::hours(1));
          return tasks::Outcome::retry(summary + ": " + x.body.substr(0, 200), delay);
        }
        // 4xx (and anything else): sending it again would not help.
        return tasks::Outcome::fail_permanently(summary + ": " + x.body.substr(0, 200));
      });
  return breakers;
}

}  // namespace errand::app
