#include "errand/app/task_api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include <fmt/format.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>

#include "app/openapi.hpp"
#include "app/task_json.hpp"
#include "errand/app/app.hpp"
#include "errand/detail/quote.hpp"
#include "errand/http/context.hpp"
#include "errand/json/text.hpp"

namespace errand::app {

namespace wire {

// POST /v1/tasks, and each element of POST /v1/tasks/batch.
struct TaskBody {
  std::string type;
  std::optional<boost::json::value> payload;
  std::optional<std::string> queue;
  std::optional<int> priority;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::string> run_at;
  std::optional<int> max_attempts;
  std::optional<std::int64_t> timeout_ms;
  std::optional<std::string> unique_key;
};
BOOST_DESCRIBE_STRUCT(TaskBody, (),
                      (type, payload, queue, priority, delay_ms, run_at, max_attempts, timeout_ms,
                       unique_key))

struct BatchBody {
  std::vector<TaskBody> tasks;
};
BOOST_DESCRIBE_STRUCT(BatchBody, (), (tasks))

// Gin's tutorial: {"task_type": "...", "task_param": ...}.
struct AsyncTaskBody {
  std::string task_type;
  std::optional<boost::json::value> task_param;
};
BOOST_DESCRIBE_STRUCT(AsyncTaskBody, (), (task_type, task_param))

struct BulkBody {
  std::string action;  // retry | cancel | delete
  std::vector<std::string> ids;
};
BOOST_DESCRIBE_STRUCT(BulkBody, (), (action, ids))

}  // namespace wire

namespace {

using http::Context;
using http::Error;

void require_json(const Context& c) {
  const auto type = c.header("Content-Type");
  if (!type) return;  // absent: assume JSON, as curl --json and most clients send it
  // The media type without parameters or the whitespace around it, compared
  // without case; no copy, every enqueue passes here.
  std::string_view media = type->substr(0, type->find(';'));
  const auto space = [](char ch) { return ch == ' ' || ch == '\t'; };
  while (!media.empty() && space(media.front())) media.remove_prefix(1);
  while (!media.empty() && space(media.back())) media.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  const bool json = media.size() == kJson.size() &&
                    std::equal(media.begin(), media.end(), kJson.begin(), [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) == b;
                    });
  if (!json) {
    throw Error(415, "unsupported_media_type",
                fmt::format("Content-Type must be application/json, not '{}'",
                            errand::detail::quote(*type)));
  }
}

tasks::TaskSpec to_spec(wire::TaskBody&& b, const Context& c, const std::string& field) {
  tasks::EnqueueOptions o;
  o.queue = std::move(b.queue);
  o.priority = b.priority;
  o.max_attempts = b.max_attempts;
  if (b.timeout_ms) o.timeout = std::chrono::milliseconds(*b.timeout_ms);
  if (b.delay_ms) o.delay = std::chrono::milliseconds(*b.delay_ms);
  if (b.run_at) {
    o.run_at = detail::parse_time(*b.run_at);
    if (!o.run_at) {
      throw Error(400, "invalid_field",
                  fmt::format("field '{}run_at' must be an RFC 3339 time such as "
                              "2026-11-24T21:00:00Z",
                              field));
    }
  }
  o.unique_key = b.unique_key.value_or("");
  boost::json::value payload = b.payload.value_or(boost::json::object());
  return {std::move(b.type), std::move(payload), from_request(c, std::move(o))};
}

boost::json::object enqueued_json(const store::Enqueued& e) {
  return {{"id", e.id}, {"state", store::to_string(e.state)}, {"created", e.created}};
}

std::string task_id(const Context& c) {
  std::string id(c.param("id"));
  if (!detail::valid_task_id(id)) {
    throw Error(400, "invalid_id", "a task id is 26 characters of Crockford base32");
  }
  return id;
}

[[noreturn]] void not_found(const std::string& id) {
  throw Error(404, "task_not_found", "no task " + id);
}

// A missing task that is a group's completion, not enqueued until its members
// are final, says so: the client should wait, not give up.
[[noreturn]] void not_found(store::Store& store, const std::string& id) {
  if (auto group = store.group_awaiting(id)) {
    throw Error(404, "group_pending",
                fmt::format("task {} is the completion of group {}, enqueued once every member "
                            "has finished; see /v1/groups/{}",
                            id, *group, *group));
  }
  not_found(id);
}

boost::json::object group_json(const store::GroupInfo& g) {
  boost::json::object members;
  for (const auto state : store::kAllStates) {
    const auto it = g.members.find(state);
    members[store::to_string(state)] = it == g.members.end() ? 0 : it->second;
  }
  boost::json::object o;
  o["id"] = g.id;
  o["state"] = g.finished_at ? "finished" : "waiting";
  o["size"] = g.size;
  o["remaining"] = g.remaining;
  o["members"] = std::move(members);
  o["completion_id"] =
      g.completion_id.empty() ? boost::json::value(nullptr) : boost::json::value(g.completion_id);
  o["finished_at"] = g.finished_at ? boost::json::value(detail::format_time(*g.finished_at))
                                   : boost::json::value(nullptr);
  return o;
}

// ?window=15m, 90s or 120 (seconds): within 1 s and `max`.
std::chrono::seconds parse_window(const Context& c, std::chrono::seconds max) {
  const auto text = c.query("window");
  if (!text) return max;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  const std::string_view unit(p, static_cast<std::size_t>(text->data() + text->size() - p));
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "m") scale = 60;
  if (ec != std::errc{} || scale == 0 || v < 1 || v > max.count() / scale) {
    throw Error(
        400, "invalid_query",
        fmt::format("window must be a duration from 1s to {}s (e.g. 15m, 90s)", max.count()));
  }
  return std::chrono::seconds(v * scale);
}

std::size_t parse_limit(const Context& c, const TaskApiOptions& opt) {
  const auto text = c.query("limit");
  if (!text) return opt.default_list_limit;
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc{} || p != text->data() + text->size() || v < 1 || v > opt.max_list_limit) {
    throw Error(400, "invalid_query",
                fmt::format("limit must be a number from 1 to {}", opt.max_list_limit));
  }
  return v;
}

}  // namespace

void install_task_api(http::Router& router, tasks::Runtime& runtime, TaskApiOptions options) {
  auto& rt = runtime;
  const TaskApiOptions opt = std::move(options);
  const http::RouteOptions blocking{.blocking = true};

  router.post("/v1/tasks", [&rt](Context& c) {
    // Parsed and checked here, on the I/O thread; the insert joins the
    // store's next group commit and the answer comes back by callback, so
    // no thread waits for the disk (see docs/architecture.md).
    require_json(c);
    auto spec = to_spec(c.bind<wire::TaskBody>(json::Unknown::reject), c, "");
    enqueue_deferred(rt, c, spec.type, std::move(spec.payload), std::move(spec.options),
                     [](Context& answer, const store::Enqueued& e) {
                       // Written as text: enqueued_json() then serialised was
                       // ~1.5k instructions of the I/O thread's per enqueue.
                       // An id is Crockford base32 and a state a fixed name:
                       // neither needs escaping.
                       answer.text(e.created ? 202 : 200,
                                   fmt::format(R"({{"id":"{}","state":"{}","created":{}}})", e.id,
                                               store::to_string(e.state), e.created),
                                   "application/json");
                     });
  });

  router.post(
      "/v1/tasks/batch",
      [&rt, opt](Context& c) {
        require_json(c);
        auto body = c.bind<wire::BatchBody>(json::Unknown::reject);
        if (body.tasks.empty()) throw Error(400, "invalid_field", "field 'tasks' is empty");
        if (body.tasks.size() > opt.max_batch) {
          throw Error(
              413, "batch_too_large",
              fmt::format("{} tasks; a batch holds at most {}", body.tasks.size(), opt.max_batch));
        }
        std::vector<tasks::TaskSpec> specs;
        specs.reserve(body.tasks.size());
        for (std::size_t i = 0; i < body.tasks.size(); ++i) {
          specs.push_back(to_spec(std::move(body.tasks[i]), c, fmt::format("tasks[{}].", i)));
        }
        const auto done = rt.enqueue_batch(specs);
        boost::json::array out;
        for (const auto& e : done) out.push_back(enqueued_json(e));
        c.json(202, {{"tasks", std::move(out)}});
      },
      blocking);

  router.get(
      "/v1/tasks/:id",
      [&rt](Context& c) {
        const auto id = task_id(c);
        auto r = rt.store().get(id);
        // A group's completion may come into being between the two lookups.
        if (!r && !rt.store().group_awaiting(id)) r = rt.store().get(id);
        if (!r) not_found(rt.store(), id);
        c.json(200, detail::task_json(*r));
      },
      blocking);

  router.get(
      "/v1/groups/:id",
      [&rt](Context& c) {
        const std::string id(c.param("id"));
        if (!detail::valid_task_id(id)) {
          throw Error(400, "invalid_id", "a group id is 26 characters of Crockford base32");
        }
        const auto g = rt.store().group(id);
        if (!g) throw Error(404, "group_not_found", "no group " + id);
        c.json(200, group_json(*g));
      },
      blocking);

  router.get(
      "/v1/tasks",
      [&rt, opt](Context& c) {
        store::ListQuery q;
        q.limit = parse_limit(c, opt);
        q.queue = c.query("queue");
        q.type = c.query("type");
        if (auto s = c.query("state")) {
          q.state = store::parse_state(*s);
          if (!q.state) {
            throw Error(400, "invalid_query",
                        "state must be one of scheduled, pending, active, succeeded, retrying, "
                        "dead, cancelled");
          }
        }
        if (auto cursor = c.query("cursor")) {
          if (!detail::valid_task_id(*cursor)) {
            throw Error(400, "invalid_query", "cursor is not one this server gave out");
          }
          q.cursor = *cursor;
        }
        if (auto key = c.query("unique_key")) {
          // The one unfinished task holding the key, if the other filters
          // let it through: an index lookup, not a scan.
          if (key->empty() || key->size() > tasks::kMaxUniqueKey) {
            throw Error(400, "invalid_query",
                        fmt::format("unique_key must be 1..{} bytes", tasks::kMaxUniqueKey));
          }
          boost::json::array list;
          const auto r = rt.store().holder_of(*key);
          if (r && (!q.queue || r->queue == *q.queue) && (!q.type || r->type == *q.type) &&
              (!q.state || r->state == *q.state)) {
            list.push_back(detail::task_json(*r, false));
          }
          c.json(200, {{"tasks", std::move(list)}, {"next_cursor", nullptr}});
          return;
        }
        const auto page = rt.store().list(q);
        boost::json::array list;
        for (const auto& r : page.tasks) list.push_back(detail::task_json(r, false));
        c.json(200,
               {{"tasks", std::move(list)},
                {"next_cursor", page.next_cursor.empty() ? boost::json::value(nullptr)
                                                         : boost::json::value(page.next_cursor)}});
      },
      blocking);

  router.get(
      "/v1/tasks/:id/events",
      [&rt](Context& c) {
        const auto id = task_id(c);
        if (!rt.store().get(id)) not_found(id);
        // One `task` event whenever state, attempt or progress change; the
        // last one is the final state (with the result), then the stream ends.
        struct Follow {
          std::string last;
          bool done = false;
          std::chrono::steady_clock::time_point sent = std::chrono::steady_clock::now();
        };
        c.stream(200, "text/event-stream",
                 [&rt, id, f = std::make_shared<Follow>()](
                     const std::stop_token&) -> std::optional<std::string> {
                   if (f->done) return std::nullopt;
                   const auto now = std::chrono::steady_clock::now();
                   std::optional<store::TaskRecord> r;
                   try {
                     r = rt.store().get(id);
                   } catch (const store::StoreError&) {
                     // Try again next tick; keep the connection alive meanwhile,
                     // which also finds out when the client has gone.
                     if (now - f->sent < std::chrono::seconds(15)) return std::string();
                     f->sent = now;
                     return std::string(": keep-alive\n\n");
                   }
                   if (!r) {
                     f->done = true;
                     return "event: deleted\ndata: {\"id\":\"" + id + "\"}\n\n";
                   }
                   auto o = detail::task_json(*r, false);
                   if (store::is_final(r->state)) {
                     o["result"] = detail::task_json(*r, true).at("result");
                     f->done = true;
                   }
                   std::string data = json::to_text(o);
                   if (data == f->last) {
                     if (now - f->sent < std::chrono::seconds(15)) return std::string();
                     f->sent = now;
                     return std::string(": keep-alive\n\n");  // proxies drop silent streams
                   }
                   f->last = data;
                   f->sent = now;
                   return "event: task\ndata: " + data + "\n\n";
                 });
      },
      blocking);

  router.post(
      "/v1/tasks/:id/cancel",
      [&rt](Context& c) {
        const auto id = task_id(c);
        switch (rt.cancel(id)) {
          case store::CancelResult::cancelled:
            c.json(200, {{"id", id}, {"state", "cancelled"}});
            return;
          case store::CancelResult::requested:
            c.json(202, {{"id", id}, {"state", "active"}, {"cancel_requested", true}});
            return;
          case store::CancelResult::final:
            throw Error(409, "task_final", "the task has already finished");
          case store::CancelResult::not_found: not_found(id);
        }
      },
      blocking);

  router.post(
      "/v1/tasks/:id/retry",
      [&rt](Context& c) {
        const auto id = task_id(c);
        if (rt.retry(id)) {
          c.json(200, {{"id", id}, {"state", "pending"}});
          return;
        }
        const auto r = rt.store().get(id);
        if (!r) not_found(id);
        if (r->state == store::TaskState::dead || r->state == store::TaskState::cancelled) {
          throw Error(409, "task_not_retryable",
                      "an unfinished task with the same unique_key exists");
        }
        throw Error(409, "task_not_retryable",
                    fmt::format("only dead or cancelled tasks can be retried; this one is {}",
                                store::to_string(r->state)));
      },
      blocking);

  router.del(
      "/v1/tasks/:id",
      [&rt](Context& c) {
        const auto id = task_id(c);
        if (rt.store().remove(id)) {
          c.status(204);
          return;
        }
        const auto r = rt.store().get(id);
        if (!r) not_found(id);
        throw Error(409, "task_not_final",
                    fmt::format("only finished tasks can be deleted; this one is {} (cancel it "
                                "first)",
                                store::to_string(r->state)));
      },
      blocking);

  // Several tasks at once, each on its own (one store transition per task,
  // as its single-task route does): what happened to each is in the answer,
  // in the order given, and one task's refusal does not stop the others.
  router.post(
      "/v1/tasks/bulk",
      [&rt, opt](Context& c) {
        require_json(c);
        auto body = c.bind<wire::BulkBody>(json::Unknown::reject);
        if (body.action != "retry" && body.action != "cancel" && body.action != "delete") {
          throw Error(400, "invalid_field", "field 'action' must be retry, cancel or delete");
        }
        if (body.ids.empty()) throw Error(400, "invalid_field", "field 'ids' is empty");
        if (body.ids.size() > opt.max_batch) {
          throw Error(413, "batch_too_large",
                      fmt::format("{} ids; a bulk action takes at most {}", body.ids.size(),
                                  opt.max_batch));
        }
        for (std::size_t i = 0; i < body.ids.size(); ++i) {
          if (!detail::valid_task_id(body.ids[i])) {
            throw Error(400, "invalid_id",
                        fmt::format("ids[{}]: a task id is 26 characters of Crockford base32", i));
          }
        }
        boost::json::array results;
        std::map<std::string, std::size_t, std::less<>> counts;
        for (const auto& id : body.ids) {
          std::string outcome;
          // A store failure on one task is that task's outcome (its error
          // code, say store_unavailable): the others, done or to do, go on.
          try {
            if (body.action == "cancel") {
              switch (rt.cancel(id)) {
                case store::CancelResult::cancelled: outcome = "cancelled"; break;
                case store::CancelResult::requested: outcome = "cancel_requested"; break;
                case store::CancelResult::final: outcome = "task_final"; break;
                case store::CancelResult::not_found: outcome = "task_not_found"; break;
              }
            } else if (body.action == "retry") {
              if (rt.retry(id)) {
                outcome = "retried";
              } else {
                outcome = rt.store().get(id) ? "task_not_retryable" : "task_not_found";
              }
            } else if (rt.store().remove(id)) {
              outcome = "deleted";
            } else {
              outcome = rt.store().get(id) ? "task_not_final" : "task_not_found";
            }
          } catch (const store::StoreError&) {
            const auto e = task_errors_as_http(std::current_exception());
            outcome = e ? e->code() : "store_error";
          }
          ++counts[outcome];
          results.push_back({{"id", id}, {"outcome", outcome}});
        }
        boost::json::object summary;
        for (const auto& [k, n] : counts) summary[k] = n;
        c.json(200, {{"action", body.action},
                     {"results", std::move(results)},
                     {"counts", std::move(summary)}});
      },
      blocking);

  router.get(
      "/v1/queues",
      [&rt](Context& c) {
        auto infos = rt.store().queues();
        for (const auto& q : rt.queues()) {  // served here but empty so far
          if (std::none_of(infos.begin(), infos.end(),
                           [&](const store::QueueInfo& i) { return i.queue == q.name; })) {
            infos.push_back({.queue = q.name});
          }
        }
        std::sort(infos.begin(), infos.end(),
                  [](const auto& a, const auto& b) { return a.queue < b.queue; });
        // Workers and busy handlers over every node: this one's live, the
        // others' as of their last heartbeat.
        std::map<std::string, std::pair<unsigned, std::size_t>, std::less<>> served;
        for (const auto& q : rt.queues()) {
          served[q.name] = {q.concurrency, rt.busy(q.name)};
        }
        for (const auto& n : rt.nodes()) {
          if (n.id == rt.owner()) continue;
          for (const auto& q : n.queues) {
            served[q.name].first += q.workers;
            served[q.name].second += q.busy;
          }
        }
        boost::json::array list;
        for (const auto& info : infos) {
          auto o = detail::queue_json(info);
          const auto it = served.find(info.queue);
          o["workers"] = it == served.end() ? 0U : it->second.first;
          o["busy"] = it == served.end() ? std::size_t{0} : it->second.second;
          list.push_back(std::move(o));
        }
        c.json(200, {{"queues", std::move(list)}});
      },
      blocking);

  router.get(
      "/v1/nodes",
      [&rt](Context& c) {
        boost::json::array list;
        for (const auto& n : rt.nodes()) {
          boost::json::array queues;
          std::size_t busy = 0;
          for (const auto& q : n.queues) {
            queues.push_back({{"name", q.name}, {"workers", q.workers}, {"busy", q.busy}});
            busy += q.busy;
          }
          boost::json::array schedules;
          for (const auto& s : n.schedules) {
            schedules.push_back({{"name", s.name},
                                 {"kind", s.kind},
                                 {"spec", s.spec},
                                 {"type", s.type},
                                 {"queue", s.queue}});
          }
          list.push_back({{"id", n.id},
                          {"role", n.role},
                          {"version", n.version},
                          {"started_at", detail::format_time(n.started_at)},
                          {"last_seen", detail::format_time(n.last_seen)},
                          {"queues", std::move(queues)},
                          {"schedules", std::move(schedules)},
                          {"busy", busy},
                          {"self", n.id == rt.owner()}});
        }
        c.json(200, {{"nodes", std::move(list)}});
      },
      blocking);

  router.get(
      "/v1/stats",
      [&rt, stats = opt.stats](Context& c) {
        const auto span = stats ? stats->span() : std::chrono::seconds(900);
        const auto len = parse_window(c, span);
        const auto now = std::chrono::system_clock::now();
        observe::TaskStats::Window w;
        if (stats) w = stats->window(now, len);
        boost::json::array nodes;
        if (stats) nodes.emplace_back(rt.owner());
        for (const auto& n : rt.nodes()) {
          if (n.id == rt.owner() || n.stats.empty()) continue;
          observe::TaskStats::merge(n.stats, now, len, w);
          nodes.emplace_back(n.id);
        }
        auto out = observe::TaskStats::to_json(w, now, len);
        out["nodes"] = std::move(nodes);
        c.json(200, std::move(out));
      },
      blocking);

  router.get(
      "/v1/schedules",
      [&rt](Context& c) {
        boost::json::array list;
        for (const auto& s : rt.schedules()) {
          boost::json::object o{{"name", s.name}, {"kind", s.kind}};
          if (s.kind == "every") {
            o["every_ms"] = s.every_ms ? boost::json::value(*s.every_ms) : nullptr;
          } else {
            o["cron"] = s.spec;
          }
          o["type"] = s.type;
          o["queue"] = s.queue;
          o["last_fired_at"] =
              s.last_fired ? boost::json::value(detail::format_time(*s.last_fired)) : nullptr;
          o["next_fire_at"] =
              s.next_fire ? boost::json::value(detail::format_time(*s.next_fire)) : nullptr;
          boost::json::array nodes;
          for (const auto& n : s.nodes) nodes.emplace_back(n);
          o["nodes"] = std::move(nodes);
          list.push_back(std::move(o));
        }
        c.json(200, {{"schedules", std::move(list)}});
      },
      blocking);

  for (const bool pause : {true, false}) {
    router.post(
        pause ? "/v1/queues/:name/pause" : "/v1/queues/:name/resume",
        [&rt, pause](Context& c) {
          const std::string name(c.param("name"));
          if (!tasks::valid_name(name)) {
            throw Error(400, "invalid_queue",
                        "queue names are 1-128 characters of A-Z a-z 0-9 . _ : -");
          }
          pause ? rt.pause(name) : rt.resume(name);
          c.json(200, {{"name", name}, {"paused", pause}});
        },
        blocking);
  }

  router.get("/v1/circuits", [circuits = opt.circuits](Context& c) {
    boost::json::array list;
    if (circuits) {
      const auto now =
          std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
      for (const auto& t : circuits->states(now)) {
        list.push_back({{"target", t.target},
                        {"state", guard::to_string(t.state)},
                        {"failures", t.failures},
                        {"retry_in_ms", t.retry_in.count()}});
      }
    }
    c.json(200, {{"circuits", std::move(list)}});
  });

  router.get("/v1/openapi.json", [](Context& c) {
    c.text(200, std::string(detail::openapi_json()), "application/json");
  });

  router.post(
      "/async-task",
      [&rt](Context& c) {
        auto body = c.bind<wire::AsyncTaskBody>(json::Unknown::reject);
        const auto e = rt.enqueue(body.task_type, body.task_param.value_or(boost::json::object()),
                                  from_request(c));
        c.json(202, {{"message", "Task started"}, {"id", e.id}});
      },
      blocking);
}

}  // namespace errand::app
