#include "app/task_json.hpp"

#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace errand::app::detail {

using namespace std::chrono;

std::string format_time(store::TimePoint t) {
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss tod{t - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     tod.hours().count(), tod.minutes().count(), tod.seconds().count(),
                     tod.subseconds().count());
}

std::optional<store::TimePoint> parse_time(std::string_view text) {
  const std::string_view s = text;
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    if (pos + len > s.size()) return false;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;  // from_chars would take a sign
    }
    const char* b = s.data() + pos;
    auto [p, ec] = std::from_chars(b, b + len, out);
    return ec == std::errc{} && p == b + len;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, sec)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    std::size_t digits = 0;
    ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) ms = ms * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) ms *= 10;
  }
  minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
    // UTC
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
    int oh = 0, om = 0;
    if (!num(pos + 1, 2, oh) || !num(pos + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = hours(oh) + minutes(om);
    if (s[pos] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  return store::TimePoint{sys_days{ymd} + hours(h) + minutes(mi) + seconds(sec) + milliseconds(ms) -
                          offset};
}

namespace {

boost::json::value json_or_text(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) return boost::json::string(text);
  return v;
}

boost::json::value opt_time(const std::optional<store::TimePoint>& t) {
  return t ? boost::json::value(format_time(*t)) : boost::json::value(nullptr);
}

boost::json::value opt_text(const std::string& s) {
  return s.empty() ? boost::json::value(nullptr) : boost::json::value(s);
}

}  // namespace

boost::json::object task_json(const store::TaskRecord& r, bool with_bodies) {
  boost::json::object o;
  o["id"] = r.id;
  o["type"] = r.type;
  o["queue"] = r.queue;
  o["state"] = store::to_string(r.state);
  o["priority"] = r.priority;
  o["attempt"] = r.attempt;
  o["max_attempts"] = r.max_attempts;
  if (with_bodies) {
    o["payload"] = json_or_text(r.payload);
    o["result"] = r.result ? json_or_text(*r.result) : boost::json::value(nullptr);
  }
  o["progress"] = {{"percent", r.progress}, {"message", r.progress_message}};
  o["last_error"] = r.last_error ? boost::json::value(*r.last_error) : boost::json::value(nullptr);
  o["run_at"] = format_time(r.run_at);
  o["timeout_ms"] = r.timeout.count();
  o["unique_key"] = opt_text(r.unique_key);
  o["group_id"] = opt_text(r.group_id);
  o["trace_id"] = r.traceparent.size() >= 35 ? boost::json::value(r.traceparent.substr(3, 32))
                                             : boost::json::value(nullptr);
  o["traceparent"] = opt_text(r.traceparent);
  o["tracestate"] = opt_text(r.tracestate);
  o["request_id"] = opt_text(r.request_id);
  o["cancel_requested"] = r.cancel_requested;
  o["node"] = opt_text(r.node);
  o["created_at"] = format_time(r.created_at);
  o["updated_at"] = format_time(r.updated_at);
  o["started_at"] = opt_time(r.started_at);
  o["finished_at"] = opt_time(r.finished_at);
  if (with_bodies) {
    boost::json::array past;
    for (const auto& a : r.history) {
      past.push_back({{"attempt", a.attempt},
                      {"node", opt_text(a.node)},
                      {"started_at", opt_time(a.started_at)},
                      {"ended_at", format_time(a.ended_at)},
                      {"outcome", a.outcome},
                      {"error", a.error}});
    }
    o["past_attempts"] = std::move(past);
  }
  return o;
}

boost::json::object queue_json(const store::QueueInfo& q) {
  return {{"name", q.queue},
          {"paused", q.paused},
          {"counts",
           {{"scheduled", q.scheduled},
            {"pending", q.pending},
            {"active", q.active},
            {"retrying", q.retrying},
            {"succeeded", q.succeeded},
            {"dead", q.dead},
            {"cancelled", q.cancelled}}}};
}

bool valid_task_id(std::string_view id) {
  if (id.size() != 26) return false;
  for (const char c : id) {
    const bool ok = (c >= '0' && c <= '9') ||
                    (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
    if (!ok) return false;
  }
  return true;
}

}  // namespace errand::app::detail
