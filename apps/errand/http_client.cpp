#include "http_client.hpp"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>

namespace errand::cli {

namespace {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Splits the byte stream into events ("\n\n"-terminated blocks of fields).
struct SseParser {
  const std::function<void(std::string_view, std::string_view)>* on_event;
  std::string buffer;

  void feed(std::string_view bytes) {
    buffer.append(bytes);
    std::size_t end = 0;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string block = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      std::string event = "message";
      std::string data;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        const auto nl = std::min(block.find('\n', pos), block.size());
        const std::string_view line(block.data() + pos, nl - pos);
        pos = nl + 1;
        if (line.starts_with("event: ")) event = line.substr(7);
        if (line.starts_with("data: ")) {
          if (!data.empty()) data += '\n';
          data += line.substr(6);
        }
      }
      if (!data.empty()) (*on_event)(event, data);
    }
  }
};

std::size_t feed_sse(char* data, std::size_t size, std::size_t n, void* parser) {
  static_cast<SseParser*>(parser)->feed({data, size * n});
  return size * n;
}

}  // namespace

HttpClient::HttpClient(std::string base_url, std::chrono::milliseconds timeout,
                       const std::string& token)
    : base_(std::move(base_url)),
      timeout_(timeout),
      authorization_(token.empty() ? std::string() : "Authorization: Bearer " + token) {
  ensure_curl();
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw ClientError("libcurl could not start");
}

HttpClient::~HttpClient() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResult HttpClient::request(std::string_view method, std::string_view path,
                               std::string_view body) {
  auto* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  const std::string url = base_ + std::string(path);
  const std::string m(method);
  HttpResult out;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!authorization_.empty()) headers = curl_slist_append(headers, authorization_.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  if (m == "POST" || m == "PUT" || !body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    throw ClientError(fmt::format("cannot reach {}: {}", base_, curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

long HttpClient::follow(std::string_view path,
                        const std::function<void(std::string_view, std::string_view)>& on_event) {
  auto* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  const std::string url = base_ + std::string(path);
  SseParser parser{&on_event, {}};
  curl_slist* headers = curl_slist_append(nullptr, "Accept: text/event-stream");
  if (!authorization_.empty()) headers = curl_slist_append(headers, authorization_.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  // No overall timeout: a task may run for hours. A silent connection is
  // dropped instead (the server sends a keep-alive every 15 s).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, feed_sse);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &parser);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    throw ClientError(fmt::format("lost {}: {}", base_, curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

}  // namespace errand::cli
