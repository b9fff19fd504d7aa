#include "store/backend_helpers.hpp"
#include "errand/json/text.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "errand/json/text.hpp"

namespace errand::store::detail {

TaskRecord make_record(NewTask&& t, TimePoint now) {
  TaskRecord r;
  r.id = std::move(t.id);
  r.type = std::move(t.type);
  r.queue = std::move(t.queue);
  r.payload = std::move(t.payload);
  r.priority = t.priority;
  r.state = t.run_at > now ? TaskState::scheduled : TaskState::pending;
  r.max_attempts = t.max_attempts;
  r.run_at = t.run_at > now ? t.run_at : now;
  r.timeout = t.timeout;
  r.unique_key = std::move(t.unique_key);
  r.traceparent = std::move(t.traceparent);
  r.tracestate = std::move(t.tracestate);
  r.request_id = std::move(t.request_id);
  r.group_id = std::move(t.group_id);
  r.created_at = now;
  r.updated_at = now;
  return r;
}

void check_room(const NewTask& t, std::size_t waiting) {
  if (t.max_waiting == 0 || waiting < t.max_waiting) return;
  throw StoreError(
      StoreError::Code::queue_full,
      fmt::format("queue '{}' has {} waiting tasks, its limit; try again later", t.queue, waiting));
}

std::string completion_payload(std::string_view group_id, std::string_view payload,
                               const std::vector<TaskRecord>& members) {
  boost::json::array list;
  list.reserve(members.size());
  for (const auto& m : members) {
    boost::json::object o;
    o["id"] = m.id;
    o["type"] = m.type;
    o["state"] = to_string(m.state);
    boost::system::error_code ec;
    o["result"] = m.result ? boost::json::parse(*m.result, ec) : boost::json::value();
    if (ec) o["result"] = *m.result;
    o["error"] = m.last_error ? boost::json::value(*m.last_error) : boost::json::value();
    o["traceparent"] = m.traceparent;
    list.push_back(std::move(o));
  }
  boost::system::error_code ec;
  boost::json::value inner = boost::json::parse(payload, ec);
  if (ec) inner = boost::json::string(payload);
  boost::json::object out;
  out["group"] = group_id;
  out["payload"] = std::move(inner);
  out["members"] = std::move(list);
  return errand::json::to_text(out);
}

std::vector<QueueInfo> queue_list(std::map<std::string, QueueInfo, std::less<>>&& by_name) {
  std::vector<QueueInfo> out;
  out.reserve(by_name.size());
  for (auto& [name, info] : by_name) {
    info.queue = name;
    out.push_back(std::move(info));
  }
  return out;
}

std::string node_to_json(const NodeInfo& n) {
  boost::json::object o;
  o["id"] = n.id;
  o["role"] = n.role;
  o["version"] = n.version;
  o["started_at"] = n.started_at.time_since_epoch().count();
  o["last_seen"] = n.last_seen.time_since_epoch().count();
  boost::json::array qs;
  for (const auto& q : n.queues) {
    qs.push_back(boost::json::object{{"name", q.name}, {"workers", q.workers}, {"busy", q.busy}});
  }
  o["queues"] = std::move(qs);
  boost::json::array ss;
  for (const auto& s : n.schedules) {
    ss.push_back(boost::json::object{{"name", s.name},
                                     {"kind", s.kind},
                                     {"spec", s.spec},
                                     {"type", s.type},
                                     {"queue", s.queue}});
  }
  o["schedules"] = std::move(ss);
  if (!n.stats.empty()) o["stats"] = n.stats;
  return boost::json::serialize(o);
}

NodeInfo node_from_json(std::string_view text) {
  const auto v = boost::json::parse(text);
  const auto& o = v.as_object();
  NodeInfo n;
  n.id = o.at("id").as_string();
  n.role = o.at("role").as_string();
  n.version = o.at("version").as_string();
  n.started_at = TimePoint{std::chrono::milliseconds(o.at("started_at").to_number<std::int64_t>())};
  n.last_seen = TimePoint{std::chrono::milliseconds(o.at("last_seen").to_number<std::int64_t>())};
  for (const auto& q : o.at("queues").as_array()) {
    const auto& qo = q.as_object();
    n.queues.push_back({std::string(qo.at("name").as_string()),
                        static_cast<unsigned>(qo.at("workers").to_number<std::int64_t>()),
                        static_cast<unsigned>(qo.at("busy").to_number<std::int64_t>())});
  }
  if (const auto* st = o.if_contains("stats"); st != nullptr && st->is_string()) {
    n.stats = st->as_string();
  }
  // Nodes of an earlier version publish no schedules.
  if (const auto* ss = o.if_contains("schedules"); ss != nullptr && ss->is_array()) {
    for (const auto& s : ss->as_array()) {
      const auto& so = s.as_object();
      auto field = [&so](const char* k) { return std::string(so.at(k).as_string()); };
      n.schedules.push_back(
          {field("name"), field("kind"), field("spec"), field("type"), field("queue")});
    }
  }
  return n;
}

std::vector<PastAttempt> history_from_json(std::string_view text) {
  std::vector<PastAttempt> out;
  boost::system::error_code ec;
  // An error message may hold invalid UTF-8 (a webhook's answer, cut): it is
  // kept as it came rather than losing the whole history over it.
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;
  const auto v = boost::json::parse(text, ec, {}, options);
  if (ec || !v.is_array()) return out;  // Lua's cjson writes an empty table as {}
  const auto ms = [](const boost::json::value* x) -> std::optional<TimePoint> {
    if (x == nullptr || !x->is_number()) return std::nullopt;
    const auto n = x->to_number<double>();
    if (n <= 0) return std::nullopt;
    return TimePoint{std::chrono::milliseconds(static_cast<std::int64_t>(n))};
  };
  const auto text_of = [](const boost::json::object& o, const char* k) {
    const auto* x = o.if_contains(k);
    return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
  };
  for (const auto& e : v.as_array()) {
    if (!e.is_object()) continue;
    const auto& o = e.as_object();
    PastAttempt a;
    if (const auto* n = o.if_contains("n"); n != nullptr && n->is_number()) {
      a.attempt = static_cast<int>(n->to_number<double>());
    }
    a.node = text_of(o, "node");
    a.started_at = ms(o.if_contains("s"));
    a.ended_at = ms(o.if_contains("e")).value_or(TimePoint{});
    a.outcome = text_of(o, "o");
    a.error = text_of(o, "err");
    out.push_back(std::move(a));
  }
  return out;
}

void add_past_attempt(std::vector<PastAttempt>& history, PastAttempt a) {
  if (a.error.size() > kMaxPastError) a.error.resize(kMaxPastError);
  history.push_back(std::move(a));
  if (history.size() > kMaxPastAttempts) {
    history.erase(history.begin(),
                  history.begin() + static_cast<std::ptrdiff_t>(history.size() - kMaxPastAttempts));
  }
}

std::string new_task_to_json(const NewTask& t) {
  boost::json::object o;
  o["id"] = t.id;
  o["type"] = t.type;
  o["queue"] = t.queue;
  o["payload"] = t.payload;
  o["priority"] = t.priority;
  o["run_at"] = t.run_at.time_since_epoch().count();
  o["max_attempts"] = t.max_attempts;
  o["timeout_ms"] = t.timeout.count();
  o["unique_key"] = t.unique_key;
  o["traceparent"] = t.traceparent;
  o["tracestate"] = t.tracestate;
  o["request_id"] = t.request_id;
  return boost::json::serialize(o);
}

NewTask new_task_from_json(std::string_view text) {
  const auto v = boost::json::parse(text);
  const auto& o = v.as_object();
  NewTask t;
  t.id = o.at("id").as_string();
  t.type = o.at("type").as_string();
  t.queue = o.at("queue").as_string();
  t.payload = o.at("payload").as_string();
  t.priority = static_cast<int>(o.at("priority").to_number<std::int64_t>());
  t.run_at = TimePoint{std::chrono::milliseconds(o.at("run_at").to_number<std::int64_t>())};
  t.max_attempts = static_cast<int>(o.at("max_attempts").to_number<std::int64_t>());
  t.timeout = std::chrono::milliseconds(o.at("timeout_ms").to_number<std::int64_t>());
  t.unique_key = o.at("unique_key").as_string();
  t.traceparent = o.at("traceparent").as_string();
  // Kept by an earlier version without it: none.
  if (const auto* ts = o.if_contains("tracestate"); ts != nullptr && ts->is_string()) {
    t.tracestate = ts->as_string();
  }
  t.request_id = o.at("request_id").as_string();
  return t;
}

}  // namespace errand::store::detail
