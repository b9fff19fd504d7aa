#include "client_commands.hpp"

#include <unistd.h>
#include <cstdlib>

#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "flag_parsers.hpp"
#include "http_client.hpp"

namespace errand::cli {

namespace {

namespace json = boost::json;

constexpr int kRefused = 1;
constexpr int kUnreachable = 3;

std::string str(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (const unsigned char ch : s) {
    if (std::isalnum(ch) != 0 || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += fmt::format("%{:02X}", ch);
    }
  }
  return out;
}

// Columns padded to the widest cell: what `errand list` and `queues` print.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string progress_bar(std::int64_t percent) {
  const auto filled = static_cast<std::size_t>(std::clamp<std::int64_t>(percent, 0, 100) / 5);
  return "[" + std::string(filled, '#') + std::string(20 - filled, '.') + "]";
}

}  // namespace

struct ClientCommands::State {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  bool as_json = false;
  std::string timeout = "30s";

  CLI::App* enqueue = nullptr;
  CLI::App* status = nullptr;
  CLI::App* cancel = nullptr;
  CLI::App* retry = nullptr;
  CLI::App* list = nullptr;
  CLI::App* queues = nullptr;
  CLI::App* nodes = nullptr;
  CLI::App* schedules = nullptr;

  // enqueue
  std::string type;
  std::string payload = "{}";
  std::optional<std::string> queue;
  std::optional<int> priority;
  std::optional<std::string> delay;
  std::optional<std::string> unique_key;
  std::optional<int> max_attempts;
  std::optional<std::string> task_timeout;
  bool wait = false;
  // status / cancel / retry
  std::string id;
  // list
  std::optional<std::string> state;
  std::optional<std::string> list_queue;
  std::optional<std::string> list_type;
  int limit = 50;

  std::unique_ptr<HttpClient> client;

  // Prints the server's error and returns kRefused, or returns 0 for 2xx.
  int check(const HttpResult& r) const {
    if (r.status >= 200 && r.status < 300) return 0;
    if (as_json) {
      std::cout << r.body << "\n";
      return kRefused;
    }
    std::string message = r.body;
    std::string code;
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (!ec && v.is_object() && v.as_object().contains("error")) {
      message = str(v.at("error").at("message"));
      code = str(v.at("error").at("code"));
    }
    std::cerr << fmt::format("errand: {} ({} {})\n", message, r.status, code);
    return kRefused;
  }

  int do_enqueue() const {
    json::object body;
    body["type"] = type;
    boost::system::error_code ec;
    body["payload"] = json::parse(payload, ec);
    if (ec) {
      std::cerr << "errand: --payload is not JSON: " << ec.message() << "\n";
      return 2;
    }
    if (queue) body["queue"] = *queue;
    if (priority) body["priority"] = *priority;
    if (delay) body["delay_ms"] = parse_duration(*delay).count();
    if (unique_key) body["unique_key"] = *unique_key;
    if (max_attempts) body["max_attempts"] = *max_attempts;
    if (task_timeout) body["timeout_ms"] = parse_duration(*task_timeout).count();
    const auto r = client->request("POST", "/v1/tasks", json::serialize(body));
    if (const int rc = check(r)) return rc;
    const auto v = json::parse(r.body);
    const std::string task_id = str(v.at("id"));
    if (!wait) {
      std::cout << (as_json ? r.body : task_id) << "\n";
      return 0;
    }
    if (!as_json) std::cerr << "task " << task_id << "\n";
    return follow(task_id);
  }

  // Follows the events stream; prints progress to stderr; exit 0 only if the
  // task succeeded.
  int follow(const std::string& task_id) const {
    const bool tty = isatty(STDERR_FILENO) != 0;
    json::value last;
    std::string shown;
    const long http_status = client->follow(
        "/v1/tasks/" + task_id + "/events", [&](std::string_view event, std::string_view data) {
          if (event != "task") return;
          try {
            boost::system::error_code ec;
            auto v = json::parse(data, ec);
            if (ec) return;
            last = v;
            if (as_json) return;
            const auto& p = v.at("progress");
            const std::string line = fmt::format(
                "{} {:>3}% {} {}", progress_bar(p.at("percent").to_number<std::int64_t>()),
                p.at("percent").to_number<std::int64_t>(), str(v.at("state")),
                str(p.at("message")));
            if (line == shown) return;
            shown = line;
            std::cerr << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n") << std::flush;
          } catch (const std::exception&) {
            // an event we cannot read: keep following
          }
        });
    if (tty && !as_json) std::cerr << "\n";
    if (http_status != 200 || !last.is_object()) {
      std::cerr << "errand: could not follow task " << task_id << " (HTTP " << http_status << ")\n";
      return kRefused;
    }
    const std::string final_state = str(last.at("state"));
    if (as_json) {
      std::cout << json::serialize(last) << "\n";
    } else {
      std::cout << final_state;
      if (final_state == "succeeded") std::cout << " " << json::serialize(last.at("result"));
      if (!last.at("last_error").is_null() && final_state != "succeeded") {
        std::cout << ": " << str(last.at("last_error"));
      }
      std::cout << "\n";
    }
    return final_state == "succeeded" ? 0 : kRefused;
  }

  int do_status() const {
    const auto r = client->request("GET", "/v1/tasks/" + url_encode(id));
    if (const int rc = check(r)) return rc;
    if (as_json) {
      std::cout << r.body << "\n";
      return 0;
    }
    const auto v = json::parse(r.body);
    const auto& p = v.at("progress");
    std::vector<std::vector<std::string>> rows = {
        {"id", str(v.at("id"))},
        {"type", str(v.at("type"))},
        {"queue", str(v.at("queue"))},
        {"state", str(v.at("state"))},
        {"attempt", fmt::format("{}/{}", str(v.at("attempt")), str(v.at("max_attempts")))},
        {"progress",
         fmt::format("{} {}% {}", progress_bar(p.at("percent").to_number<std::int64_t>()),
                     str(p.at("percent")), str(p.at("message")))},
        {"created", str(v.at("created_at"))},
        {"run at", str(v.at("run_at"))},
        {"started", str(v.at("started_at"))},
        {"finished", str(v.at("finished_at"))},
        {"trace id", str(v.at("trace_id"))},
        {"payload", str(v.at("payload"))},
        {"result", str(v.at("result"))},
        {"last error", str(v.at("last_error"))},
    };
    print_table(rows);
    return 0;
  }

  int do_post_action(std::string_view action) const {
    const auto r =
        client->request("POST", "/v1/tasks/" + url_encode(id) + "/" + std::string(action));
    if (const int rc = check(r)) return rc;
    if (as_json) {
      std::cout << r.body << "\n";
      return 0;
    }
    const auto v = json::parse(r.body);
    if (v.as_object().contains("cancel_requested")) {
      std::cout << "cancel requested: the task stops at its next check\n";
    } else {
      std::cout << str(v.at("state")) << "\n";
    }
    return 0;
  }

  int do_list() const {
    std::string base = "/v1/tasks?";
    if (state) base += "state=" + url_encode(*state) + "&";
    if (list_queue) base += "queue=" + url_encode(*list_queue) + "&";
    if (list_type) base += "type=" + url_encode(*list_type) + "&";
    // A filter that matches rarely gets short pages (the server examines a
    // bounded number of tasks per request): follow the cursor until `limit`
    // tasks are in, the list ends, or 20 requests went by.
    const auto wanted = static_cast<std::size_t>(std::max(limit, 1));
    json::array tasks;
    json::value cursor = nullptr;
    for (int request = 0; request < 20 && tasks.size() < wanted; ++request) {
      std::string q = base + fmt::format("limit={}", wanted - tasks.size());
      if (cursor.is_string()) q += "&cursor=" + url_encode(std::string(cursor.as_string()));
      const auto r = client->request("GET", q);
      if (const int rc = check(r)) return rc;
      auto page = json::parse(r.body);
      for (auto& t : page.at("tasks").as_array()) tasks.push_back(std::move(t));
      cursor = page.at("next_cursor");
      if (cursor.is_null()) break;
    }
    if (as_json) {
      std::cout << json::serialize(
                       json::object{{"tasks", std::move(tasks)}, {"next_cursor", cursor}})
                << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ID", "TYPE", "QUEUE", "STATE", "ATTEMPT", "PROGRESS", "CREATED"}};
    for (const auto& t : tasks) {
      rows.push_back({str(t.at("id")), str(t.at("type")), str(t.at("queue")), str(t.at("state")),
                      fmt::format("{}/{}", str(t.at("attempt")), str(t.at("max_attempts"))),
                      str(t.at("progress").at("percent")) + "%", str(t.at("created_at"))});
    }
    print_table(rows);
    if (!cursor.is_null()) std::cout << "(more: raise --limit)\n";
    return 0;
  }

  int do_queues() const {
    const auto r = client->request("GET", "/v1/queues");
    if (const int rc = check(r)) return rc;
    if (as_json) {
      std::cout << r.body << "\n";
      return 0;
    }
    const auto v = json::parse(r.body);
    std::vector<std::vector<std::string>> rows = {{"QUEUE", "PAUSED", "SCHEDULED", "PENDING",
                                                   "ACTIVE", "RETRYING", "SUCCEEDED", "DEAD",
                                                   "CANCELLED", "WORKERS"}};
    for (const auto& q : v.at("queues").as_array()) {
      const auto& c = q.at("counts");
      rows.push_back({str(q.at("name")), q.at("paused").as_bool() ? "yes" : "no",
                      str(c.at("scheduled")), str(c.at("pending")), str(c.at("active")),
                      str(c.at("retrying")), str(c.at("succeeded")), str(c.at("dead")),
                      str(c.at("cancelled")), str(q.at("workers"))});
    }
    print_table(rows);
    return 0;
  }

  // GET `path`: the body as it came with --json, else `table` of its JSON.
  int show(
      std::string_view path,
      const std::function<std::vector<std::vector<std::string>>(const json::value&)>& table) const {
    const auto r = client->request("GET", path);
    if (const int rc = check(r)) return rc;
    if (as_json) {
      std::cout << r.body << "\n";
      return 0;
    }
    print_table(table(json::parse(r.body)));
    return 0;
  }

  int do_nodes() const {
    return show("/v1/nodes", [](const json::value& v) {
      std::vector<std::vector<std::string>> rows = {
          {"NODE", "ROLE", "VERSION", "STARTED", "LAST SEEN", "QUEUES (BUSY/WORKERS)"}};
      for (const auto& n : v.at("nodes").as_array()) {
        std::string served;
        for (const auto& q : n.at("queues").as_array()) {
          if (!served.empty()) served += " ";
          served +=
              fmt::format("{}={}/{}", str(q.at("name")), str(q.at("busy")), str(q.at("workers")));
        }
        rows.push_back({str(n.at("id")) + (n.at("self").as_bool() ? " *" : ""), str(n.at("role")),
                        str(n.at("version")), str(n.at("started_at")), str(n.at("last_seen")),
                        served.empty() ? "-" : served});
      }
      return rows;
    });
  }

  int do_schedules() const {
    return show("/v1/schedules", [](const json::value& v) {
      std::vector<std::vector<std::string>> rows = {
          {"SCHEDULE", "WHEN", "TYPE", "QUEUE", "LAST FIRED", "NEXT", "NODES"}};
      for (const auto& s : v.at("schedules").as_array()) {
        const auto& o = s.as_object();
        const std::string when = str(o.at("kind")) == "every"
                                     ? fmt::format("every {} ms", str(o.at("every_ms")))
                                     : "cron " + str(o.at("cron"));
        auto time = [&o](const char* k) { return o.at(k).is_null() ? "-" : str(o.at(k)); };
        std::string registered;
        for (const auto& n : o.at("nodes").as_array())
          registered += (registered.empty() ? "" : " ") + str(n);
        rows.push_back({str(o.at("name")), when, str(o.at("type")), str(o.at("queue")),
                        time("last_fired_at"), time("next_fire_at"),
                        registered.empty() ? "-" : registered});
      }
      return rows;
    });
  }
};

ClientCommands::ClientCommands(CLI::App& cli) : s_(std::make_unique<State>()) {
  auto& s = *s_;
  // The environment is read here, once, not through CLI11's envname: every
  // subcommand binds these two variables, and CLI11 applies an option's
  // environment variable even for subcommands that were not given, after
  // the command line of the one that was.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read at start-up, before any thread
  if (const char* server = std::getenv("ERRAND_SERVER")) s.server = server;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): the same
  if (const char* token = std::getenv("ERRAND_TOKEN")) s.token = token;
  auto common = [&s](CLI::App* cmd) {
    cmd->add_option("--server", s.server, "errand server URL (env ERRAND_SERVER)")
        ->capture_default_str();
    cmd->add_option("--token", s.token,
                    "Bearer token, when the server has --auth-token (env ERRAND_TOKEN)");
    cmd->add_flag("--json", s.as_json, "Print the server's JSON instead of a table");
    cmd->add_option("--timeout", s.timeout, "Request timeout")->capture_default_str();
    return cmd;
  };
  s.enqueue = common(cli.add_subcommand("enqueue", "Enqueue a task on a running server"));
  s.enqueue->add_option("type", s.type, "Task type, e.g. demo.sleep")->required();
  s.enqueue->add_option("--payload", s.payload, "Payload as JSON")->capture_default_str();
  s.enqueue->add_option("--queue", s.queue, "Queue (default: the type's)");
  s.enqueue->add_option("--priority", s.priority, "Priority within the queue, -1000..1000");
  s.enqueue->add_option("--delay", s.delay, "Run after this long, e.g. 30s");
  s.enqueue->add_option("--unique-key", s.unique_key, "Idempotency key");
  s.enqueue->add_option("--max-attempts", s.max_attempts, "Attempts before the task is dead");
  s.enqueue->add_option("--task-timeout", s.task_timeout, "Deadline of each attempt, e.g. 5m");
  s.enqueue->add_flag("--wait", s.wait,
                      "Follow the task until it ends; exit 1 unless it succeeded");

  s.status = common(cli.add_subcommand("status", "Show a task"));
  s.status->add_option("id", s.id, "Task id")->required();
  s.cancel = common(cli.add_subcommand("cancel", "Cancel a task"));
  s.cancel->add_option("id", s.id, "Task id")->required();
  s.retry = common(cli.add_subcommand("retry", "Run a dead or cancelled task again"));
  s.retry->add_option("id", s.id, "Task id")->required();

  s.list = common(cli.add_subcommand("list", "List tasks, newest first"));
  s.list->add_option("--state", s.state,
                     "scheduled, pending, active, retrying, succeeded, dead, cancelled");
  s.list->add_option("--queue", s.list_queue, "Only this queue");
  s.list->add_option("--type", s.list_type, "Only this task type");
  s.list->add_option("--limit", s.limit, "At most this many")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();

  s.queues = common(cli.add_subcommand("queues", "Show queues and their counts"));
  s.nodes = common(
      cli.add_subcommand("nodes", "Show the nodes sharing the server's store (* the one asked)"));
  s.schedules = common(cli.add_subcommand(
      "schedules", "Show the periodic schedules, their last and next tick, and their nodes"));
}

ClientCommands::~ClientCommands() = default;

bool ClientCommands::parsed() const {
  const auto& s = *s_;
  return s.enqueue->parsed() || s.status->parsed() || s.cancel->parsed() || s.retry->parsed() ||
         s.list->parsed() || s.queues->parsed() || s.nodes->parsed() || s.schedules->parsed();
}

int ClientCommands::run() {
  auto& s = *s_;
  try {
    s.client = std::make_unique<HttpClient>(s.server, parse_duration(s.timeout), s.token);
    if (s.enqueue->parsed()) return s.do_enqueue();
    if (s.status->parsed()) return s.do_status();
    if (s.cancel->parsed()) return s.do_post_action("cancel");
    if (s.retry->parsed()) return s.do_post_action("retry");
    if (s.list->parsed()) return s.do_list();
    if (s.nodes->parsed()) return s.do_nodes();
    if (s.schedules->parsed()) return s.do_schedules();
    return s.do_queues();
  } catch (const ClientError& e) {
    std::cerr << "errand: " << e.what() << "\n";
    return kUnreachable;
  } catch (const std::invalid_argument& e) {
    std::cerr << "errand: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {  // a malformed answer
    std::cerr << "errand: unexpected answer from " << s.server << ": " << e.what() << "\n";
    return kRefused;
  }
}

}  // namespace errand::cli
