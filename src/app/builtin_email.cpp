// email.send: SMTP through libcurl, to the server `errand serve --smtp-*` names.
#include <curl/curl.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <variant>

#include <fmt/format.h>
#include <boost/describe.hpp>

#include "app/curl_stop.hpp"
#include "app/task_json.hpp"
#include "detail/curl_global.hpp"
#include "errand/app/builtin_tasks.hpp"
#include "errand/detail/quote.hpp"
#include "errand/observe/trace_context.hpp"

namespace errand::app {

struct EmailTask {
  std::vector<std::string> to;
  std::string subject;
  std::string body;
  std::optional<std::string> from;

  void validate() const {
    if (to.empty() || to.size() > 100) {
      throw json::BindError("to", "field 'to' must list 1 to 100 addresses");
    }
    auto check_address = [](const std::string& a, const std::string& field) {
      const auto at = a.find('@');
      if (a.size() > 254 || at == std::string::npos || at == 0 || at + 1 == a.size() ||
          a.find_first_of(" <>\r\n\t,;") != std::string::npos) {
        throw json::BindError(field, "field '" + field + "' is not an e-mail address: '" +
                                         errand::detail::quote(a) + "'");
      }
    };
    for (std::size_t i = 0; i < to.size(); ++i) check_address(to[i], fmt::format("to[{}]", i));
    if (from) check_address(*from, "from");
    if (subject.find_first_of("\r\n") != std::string::npos || subject.size() > 998) {
      throw json::BindError("subject", "field 'subject' must be one line of at most 998 bytes");
    }
    if (body.size() > std::size_t{10} * 1024 * 1024) {
      throw json::BindError("body", "field 'body' is over 10 MiB");
    }
  }
};
BOOST_DESCRIBE_STRUCT(EmailTask, (), (to, subject, body, from))

namespace {

struct Upload {
  std::string data;
  std::size_t pos = 0;
  const tasks::TaskContext* task = nullptr;
};

std::size_t read_message(char* buffer, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const std::size_t room = size * n;
  const std::size_t len = std::min(room, u->data.size() - u->pos);
  u->data.copy(buffer, len, u->pos);  // not a C string: no terminator wanted
  u->pos += len;
  return len;
}

// RFC 5322 message; lines end in CRLF; a body line starting with "." is
// dot-stuffed by libcurl itself.
std::string message(const EmailTask& in, const std::string& from, const tasks::TaskContext& t,
                    const observe::TraceContext& trace) {
  std::string to_line;
  for (const auto& a : in.to) to_line += (to_line.empty() ? "" : ", ") + a;
  const auto now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  std::string out = fmt::format(
      "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@errand>\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "X-Errand-Task-Id: {}\r\ntraceparent: {}\r\n\r\n",
      from, to_line, in.subject, detail::format_time(now), t.id(), t.id(), trace.to_traceparent());
  std::size_t pos = 0;
  while (pos <= in.body.size()) {  // normalise line ends to CRLF
    const auto nl = std::min(in.body.find('\n', pos), in.body.size());
    std::string_view line(in.body.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out += line;
    out += "\r\n";
    pos = nl + 1;
  }
  return out;
}

}  // namespace

void register_email_send(tasks::Runtime& runtime, const SmtpOptions& smtp) {
  errand::detail::ensure_curl();
  runtime.handle<EmailTask>("email.send", [smtp](tasks::TaskContext& t, const EmailTask& in) {
    const std::string from = in.from.value_or(smtp.from);
    CURL* c = curl_easy_init();
    if (c == nullptr) return tasks::Outcome::retry("libcurl could not start");
    // The SMTP exchange's span; the message carries its traceparent.
    auto span = t.start_span("smtp send", observe::SpanKind::client);
    if (span.recording()) {
      span.set("server.address", smtp.host)
          .set("server.port", smtp.port)
          .set("errand.email.recipients", in.to.size());
    }
    Upload up{message(in, from, t, span.context()), 0, &t};
    const std::string scheme = smtp.tls == SmtpOptions::Tls::implicit ? "smtps" : "smtp";
    const std::string url = fmt::format("{}://{}:{}", scheme, smtp.host, smtp.port);
    curl_slist* rcpt = nullptr;
    for (const auto& a : in.to) rcpt = curl_slist_append(rcpt, ("<" + a + ">").c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, ("<" + from + ">").c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE, static_cast<long>(up.data.size()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(smtp.timeout.count()));
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_when_stopped<Upload>);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &up);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (smtp.tls == SmtpOptions::Tls::starttls)
      curl_easy_setopt(c, CURLOPT_USE_SSL, CURLUSESSL_ALL);
    if (!smtp.user.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, smtp.user.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, smtp.password.c_str());
    }
    const CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    if (span.recording()) {
      span.set("errand.smtp.reply", code);
      if (rc != CURLE_OK) {
        span.set("error.type", curl_easy_strerror(rc))
            .set_error(fmt::format("{} (reply {})", curl_easy_strerror(rc), code));
      }
    }
    span.end();
    if (rc == CURLE_ABORTED_BY_CALLBACK) return tasks::Outcome::cancelled();
    if (rc == CURLE_OK) {
      return tasks::Outcome::done({{"accepted", in.to.size()}, {"smtp_status", code}});
    }
    const std::string error =
        fmt::format("SMTP {}: {} (reply {})", url, curl_easy_strerror(rc), code);
    // 5xx replies are permanent (RFC 5321: bad address, policy); the rest —
    // connection trouble, timeouts, 4xx — is worth another try.
    if (code >= 500 && code < 600) return tasks::Outcome::fail_permanently(error);
    return tasks::Outcome::retry(error);
  });
}

}  // namespace errand::app
