#include "errand/app/config.hpp"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <stdexcept>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "app/client_commands.hpp"
#include "errand/app/serve.hpp"

namespace errand::app {

std::chrono::milliseconds parse_duration(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument(
        fmt::format("invalid duration '{}' (use e.g. 250ms, 10s, 2m, 1h)", text));
  };
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr == text.data()) throw bad();
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  std::uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit.empty() || unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else
    throw bad();
  if (value > std::uint64_t{1} << 40U) throw bad();
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * factor));
}

std::pair<std::string, std::uint16_t> parse_listen(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument(
        fmt::format("invalid listen address '{}' (use HOST:PORT, e.g. 127.0.0.1:8080)", text));
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw bad();
  std::string host(text.substr(0, colon));
  const auto port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535) throw bad();
  return {host, static_cast<std::uint16_t>(port)};
}

std::vector<tasks::QueueConfig> parse_queues(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(fmt::format(
        "invalid queues '{}': {} (use NAME=WORKERS[:WEIGHT],..., e.g. default=4,mail=2:3)", text,
        why));
  };
  std::vector<tasks::QueueConfig> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = std::min(text.find(',', pos), text.size());
    const auto item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) throw bad("missing '='");
    tasks::QueueConfig q;
    q.name = std::string(item.substr(0, eq));
    if (!tasks::valid_name(q.name)) throw bad("bad queue name");
    for (const auto& other : out) {
      if (other.name == q.name) throw bad("queue listed twice");
    }
    auto rest = item.substr(eq + 1);
    const auto colon = rest.find(':');
    auto number = [&](std::string_view n, unsigned lo, unsigned hi) {
      unsigned v = 0;
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
      if (ec != std::errc{} || ptr != n.data() + n.size() || v < lo || v > hi) {
        throw bad(fmt::format("'{}' is not a number in [{}, {}]", n, lo, hi));
      }
      return v;
    };
    q.concurrency = number(rest.substr(0, colon), 1, 1024);
    if (colon != std::string_view::npos) q.weight = number(rest.substr(colon + 1), 1, 1000);
    out.push_back(std::move(q));
  }
  return out;
}

namespace {

void add_duration(CLI::App& cmd, const std::string& name, std::chrono::milliseconds& target,
                  const std::string& env, const std::string& help) {
  cmd.add_option_function<std::string>(
         name,
         [&target, name](const std::string& v) {
           try {
             target = parse_duration(v);
           } catch (const std::invalid_argument& e) {
             throw CLI::ValidationError(name, e.what());
           }
         },
         help)
      ->envname(env)
      ->default_str(fmt::format("{}ms", target.count()));
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App cli{"errand: HTTP handlers that answer at once, with background errands", "errand"};
  cli.set_version_flag("--version", std::string("errand ") + ERRAND_VERSION);
  cli.require_subcommand(1);

  detail::ClientCommands client(cli);

  Config config;
  auto& http = config.http;
  auto* serve_cmd = cli.add_subcommand("serve", "Run the HTTP server");
  // A TOML file of the same options under [serve], without their dashes:
  // `queues = "default=8"`. Precedence (CLI11's): command line, then the
  // file, then the environment. `errand serve --config F` works too (fallthrough to the root).
  // An unknown key is an error, not silently ignored.
  cli.set_config("--config", "", "Read options from a TOML file (see docs/operations.md)")
      ->envname("ERRAND_CONFIG");
  cli.allow_config_extras(CLI::config_extras_mode::error);
  serve_cmd->fallthrough();
  std::string listen = fmt::format("{}:{}", http.address, http.port);
  serve_cmd->add_option("--listen", listen, "Address to listen on, HOST:PORT")
      ->envname("ERRAND_LISTEN")
      ->capture_default_str();
  serve_cmd->add_option("--threads", http.threads, "I/O threads (0: one per core)")
      ->envname("ERRAND_THREADS")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-header-bytes", http.max_header_bytes,
                   "Largest request header accepted (431 beyond)")
      ->envname("ERRAND_MAX_HEADER_BYTES")
      ->check(CLI::Range(std::size_t{256}, std::size_t{1} << 24U))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-body-bytes", http.max_body_bytes,
                   "Largest request body accepted (413 beyond)")
      ->envname("ERRAND_MAX_BODY_BYTES")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-connections", http.max_connections,
                   "Open connections at most (503 and close beyond)")
      ->envname("ERRAND_MAX_CONNECTIONS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve_cmd
      ->add_option("--blocking-threads", http.blocking_threads,
                   "Threads for routes marked blocking")
      ->envname("ERRAND_BLOCKING_THREADS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve_cmd
      ->add_option("--blocking-queue", http.blocking_queue,
                   "Blocking requests that may wait for a thread (503 beyond)")
      ->envname("ERRAND_BLOCKING_QUEUE")
      ->capture_default_str();
  add_duration(*serve_cmd, "--header-timeout", http.header_timeout, "ERRAND_HEADER_TIMEOUT",
               "Time to receive a request's headers before the connection is closed");
  add_duration(*serve_cmd, "--body-timeout", http.body_timeout, "ERRAND_BODY_TIMEOUT",
               "Time to receive a request's body before the connection is closed");
  add_duration(*serve_cmd, "--idle-timeout", http.idle_timeout, "ERRAND_IDLE_TIMEOUT",
               "Keep-alive connections idle longer are closed");
  add_duration(*serve_cmd, "--write-timeout", http.write_timeout, "ERRAND_WRITE_TIMEOUT",
               "Time to write a response before the connection is closed");
  add_duration(*serve_cmd, "--request-timeout", config.request_timeout, "ERRAND_REQUEST_TIMEOUT",
               "Handler deadline (408 beyond)");
  add_duration(*serve_cmd, "--shutdown-grace", http.shutdown_grace, "ERRAND_SHUTDOWN_GRACE",
               "On SIGTERM, time for in-flight requests to finish");
  std::string log_level = "info";
  serve_cmd->add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->envname("ERRAND_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  std::string store_kind = "sqlite";
  serve_cmd->add_option("--store", store_kind, "Task store: sqlite (durable) or memory")
      ->envname("ERRAND_STORE")
      ->check(CLI::IsMember({"sqlite", "memory"}))
      ->capture_default_str();
  serve_cmd->add_option("--db", config.sqlite.path, "SQLite file (parent dirs are created)")
      ->envname("ERRAND_DB")
      ->capture_default_str();
  std::string sync = "normal";
  serve_cmd
      ->add_option("--sync", sync,
                   "SQLite durability: normal (survives a crash) or full (survives power loss)")
      ->envname("ERRAND_SYNC")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  std::string queues = "default=4";
  serve_cmd->add_option("--queues", queues, "Queues and their workers: NAME=WORKERS[:WEIGHT],...")
      ->envname("ERRAND_QUEUES")
      ->capture_default_str();
  add_duration(*serve_cmd, "--task-grace", config.task_grace, "ERRAND_TASK_GRACE",
               "On shutdown, time for running tasks to finish before they are stopped");
  add_duration(*serve_cmd, "--lease", config.lease, "ERRAND_LEASE",
               "Lease of a running task; a crashed worker's tasks return after it expires");
  add_duration(*serve_cmd, "--retention", config.retention, "ERRAND_RETENTION",
               "How long finished tasks are kept");

  serve_cmd
      ->add_option("--smtp-host", config.smtp.host,
                   "SMTP server for email.send (unset: no email.send)")
      ->envname("ERRAND_SMTP_HOST");
  serve_cmd->add_option("--smtp-port", config.smtp.port, "SMTP port")
      ->envname("ERRAND_SMTP_PORT")
      ->capture_default_str();
  std::string smtp_tls = "none";
  serve_cmd->add_option("--smtp-tls", smtp_tls, "none, starttls or implicit (smtps)")
      ->envname("ERRAND_SMTP_TLS")
      ->check(CLI::IsMember({"none", "starttls", "implicit"}))
      ->capture_default_str();
  serve_cmd->add_option("--smtp-user", config.smtp.user, "SMTP user")->envname("ERRAND_SMTP_USER");
  serve_cmd->add_option("--smtp-password", config.smtp.password, "SMTP password (prefer the env)")
      ->envname("ERRAND_SMTP_PASSWORD");
  serve_cmd->add_option("--smtp-from", config.smtp.from, "Sender when a task names none")
      ->envname("ERRAND_SMTP_FROM")
      ->capture_default_str();

  try {
    cli.parse(argc, argv);
    if (serve_cmd->parsed()) {
      config.smtp.tls = smtp_tls == "starttls"   ? SmtpOptions::Tls::starttls
                        : smtp_tls == "implicit" ? SmtpOptions::Tls::implicit
                                                 : SmtpOptions::Tls::none;
      std::tie(http.address, http.port) = parse_listen(listen);
      config.log_level = observe::parse_level(log_level);
      config.store = store_kind == "memory" ? Config::StoreKind::memory : Config::StoreKind::sqlite;
      config.sqlite.synchronous = sync == "full" ? store::SqliteOptions::Synchronous::full
                                                 : store::SqliteOptions::Synchronous::normal;
      config.queues = parse_queues(queues);
      if (config.lease < std::chrono::seconds(1)) {
        throw std::invalid_argument("--lease must be at least 1s");
      }
    }
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with code 0; every usage error exits 2.
    return cli.exit(e) == 0 ? 0 : 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "errand: " << e.what() << "\n";
    return 2;
  }
  if (serve_cmd->parsed()) return serve(config);
  if (client.parsed()) return client.run();
  return 0;
}

}  // namespace errand::app
