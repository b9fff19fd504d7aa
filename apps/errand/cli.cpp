#include "cli.hpp"

#include <unistd.h>

#include <iostream>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "client_commands.hpp"
#include "errand/app/serve.hpp"
#include "errand/store/sqlite_store.hpp"
#include "flag_parsers.hpp"

namespace errand::cli {

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

int main(int argc, char** argv) {
  store::tune_sqlite_for_errand();  // before any thread touches SQLite
  return run(argc, argv, [](const app::Config& config) { return app::serve(config); });
}

int run(int argc, char** argv, const std::function<int(const app::Config&)>& serve) {
  CLI::App cli{"errand: HTTP handlers that answer at once, with background errands", "errand"};
  cli.set_version_flag("--version", std::string("errand ") + ERRAND_VERSION);
  cli.require_subcommand(1);

  ClientCommands client(cli);

  app::Config config;
  auto& http = config.app.http;
  auto& tasks = config.app.tasks;
  std::optional<double> trace_ratio;
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
      ->capture_default_str();
  serve_cmd
      ->add_option("--blocking-threads", http.blocking_threads,
                   "Threads for routes marked blocking")
      ->envname("ERRAND_BLOCKING_THREADS")
      ->capture_default_str();
  serve_cmd
      ->add_option("--blocking-queue", http.blocking_queue,
                   "Blocking requests that may wait for a thread (503 beyond)")
      ->envname("ERRAND_BLOCKING_QUEUE")
      ->capture_default_str();
  serve_cmd
      ->add_flag("--adaptive-blocking", http.adaptive_blocking,
                 "Admit blocking requests up to an adaptive limit that follows their latency "
                 "(503 beyond, before they wait)")
      ->envname("ERRAND_ADAPTIVE_BLOCKING");
  add_duration(*serve_cmd, "--header-timeout", http.header_timeout, "ERRAND_HEADER_TIMEOUT",
               "Time to receive a request's headers before the connection is closed");
  add_duration(*serve_cmd, "--body-timeout", http.body_timeout, "ERRAND_BODY_TIMEOUT",
               "Time to receive a request's body before the connection is closed");
  add_duration(*serve_cmd, "--idle-timeout", http.idle_timeout, "ERRAND_IDLE_TIMEOUT",
               "Keep-alive connections idle longer are closed");
  add_duration(*serve_cmd, "--write-timeout", http.write_timeout, "ERRAND_WRITE_TIMEOUT",
               "Time to write a response before the connection is closed");
  add_duration(*serve_cmd, "--request-timeout", config.app.request_timeout,
               "ERRAND_REQUEST_TIMEOUT", "Handler deadline (408 beyond)");
  add_duration(*serve_cmd, "--shutdown-grace", http.shutdown_grace, "ERRAND_SHUTDOWN_GRACE",
               "On SIGTERM, time for in-flight requests to finish");
  add_duration(*serve_cmd, "--shutdown-abandon", http.shutdown_abandon, "ERRAND_SHUTDOWN_ABANDON",
               "After each grace, how long shutdown still waits for what ignores its stop token "
               "before it gives up (exit status 70 for a stuck handler)");
  std::string log_level = "info";
  serve_cmd->add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->envname("ERRAND_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  std::string log_format = "auto";
  serve_cmd
      ->add_option("--log-format", log_format,
                   "json (one object per line), text (for people) or auto (text on a terminal)")
      ->envname("ERRAND_LOG_FORMAT")
      ->check(CLI::IsMember({"auto", "json", "text"}))
      ->capture_default_str();

  std::vector<std::string> rate_limits;
  std::vector<std::string> schedules;
  serve_cmd
      ->add_option("--schedule", schedules,
                   "Periodic task: NAME=every:DURATION:TYPE[:QUEUE[:PAYLOAD]] or "
                   "NAME=cron:EXPRESSION:TYPE[:QUEUE[:PAYLOAD]]; each tick fires once across "
                   "nodes; repeatable")
      ->envname("ERRAND_SCHEDULES")
      ->delimiter(';');
  serve_cmd
      ->add_option("--rate-limit", rate_limits,
                   "Token bucket per route group: PREFIX=RATE:BURST[:ip|global|header:NAME] "
                   "(429 beyond); repeatable")
      ->envname("ERRAND_RATE_LIMITS")
      ->delimiter(',');
  serve_cmd
      ->add_option("--auth-token", config.auth_tokens,
                   "Bearer token accepted on every route but --auth-public ones (401 without); "
                   "repeatable; none: no authentication")
      ->envname("ERRAND_AUTH_TOKENS")
      ->delimiter(',');
  serve_cmd
      ->add_option("--auth-public", config.auth_public,
                   "Route prefixes open without a token when --auth-token is set")
      ->envname("ERRAND_AUTH_PUBLIC")
      ->delimiter(',')
      ->capture_default_str();
  serve_cmd
      ->add_option("--ui-trace-url", config.ui_trace_url,
                   "Dashboard: link template to your trace viewer, {trace_id} replaced "
                   "(e.g. http://jaeger:16686/trace/{trace_id})")
      ->envname("ERRAND_UI_TRACE_URL");
  serve_cmd
      ->add_option("--otlp-endpoint", config.app.tracing.endpoint,
                   "Export spans over OTLP/HTTP to this collector (http://HOST:4318; spans go to "
                   "/v1/traces); OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables are "
                   "honoured too. None: no spans")
      ->envname("ERRAND_OTLP_ENDPOINT");
  serve_cmd
      ->add_option("--trace-sample-ratio", trace_ratio,
                   "Share of new traces recorded, 0..1 (a request with a sampled traceparent is "
                   "always recorded: parent-based); default 1, or OTEL_TRACES_SAMPLER(_ARG)")
      ->envname("ERRAND_TRACE_SAMPLE_RATIO")
      ->check(CLI::Range(0.0, 1.0));
  std::vector<std::string> concurrency_limits;
  serve_cmd
      ->add_option("--concurrency-limit", concurrency_limits,
                   "Requests in flight per route group: PREFIX=MAX[:WAIT] (503 beyond); "
                   "repeatable")
      ->envname("ERRAND_CONCURRENCY_LIMITS")
      ->delimiter(',');
  serve_cmd
      ->add_option("--max-waiting", tasks.max_waiting,
                   "Waiting tasks per queue at most; enqueues beyond get 503 queue_full (0: "
                   "unlimited)")
      ->envname("ERRAND_MAX_WAITING")
      ->capture_default_str();
  std::string queue_limits;
  serve_cmd
      ->add_option("--queue-max-waiting", queue_limits,
                   "Per-queue overrides of --max-waiting: NAME=N,... (0: unlimited)")
      ->envname("ERRAND_QUEUE_MAX_WAITING");
  serve_cmd
      ->add_option("--breaker-failures", config.breaker.failure_threshold,
                   "http.request: failures in a row that open a host's circuit")
      ->envname("ERRAND_BREAKER_FAILURES")
      ->capture_default_str();
  add_duration(*serve_cmd, "--breaker-open", config.breaker.open_for, "ERRAND_BREAKER_OPEN",
               "http.request: how long an open circuit fails fast before one probe");

  std::string store_kind = "sqlite";
  serve_cmd
      ->add_option("--store", store_kind,
                   "Task store: sqlite (durable, this machine), memory, or "
                   "redis://[[user]:password@]HOST[:PORT][/DB] (several nodes)")
      ->envname("ERRAND_STORE")
      ->check(
          [](const std::string& s) {
            if (s == "sqlite" || s == "memory") return std::string();
            if (!store::is_redis_url(s)) return std::string("sqlite, memory or a redis:// URL");
            try {
              (void)store::parse_redis_url(s);
            } catch (const std::invalid_argument& e) {
              return std::string(e.what());
            }
            return std::string();
          },
          "sqlite|memory|redis://...")
      ->capture_default_str();
  serve_cmd
      ->add_option("--redis-prefix", config.redis.key_prefix,
                   "Redis store: prefix (and hash tag) of every key; one per deployment")
      ->envname("ERRAND_REDIS_PREFIX")
      ->capture_default_str();
  serve_cmd
      ->add_option("--redis-connections", config.redis.connections,
                   "Redis store: pooled connections (each pipelines)")
      ->envname("ERRAND_REDIS_CONNECTIONS")
      ->capture_default_str();
  add_duration(*serve_cmd, "--redis-timeout", config.redis.command_timeout, "ERRAND_REDIS_TIMEOUT",
               "Redis store: a command without a reply by then fails (503 store_unavailable)");
  serve_cmd->add_option("--db", config.app.sqlite.path, "SQLite file (parent dirs are created)")
      ->envname("ERRAND_DB")
      ->capture_default_str();
  std::string sync = "normal";
  serve_cmd
      ->add_option("--sync", sync,
                   "SQLite durability: normal (survives a crash) or full (survives power loss)")
      ->envname("ERRAND_SYNC")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  serve_cmd
      ->add_option("--wal-limit-bytes", config.app.sqlite.wal_limit_bytes,
                   "SQLite: the write-ahead log's bound; past it the writer restarts the log")
      ->envname("ERRAND_WAL_LIMIT_BYTES")
      ->check(CLI::Range(std::uint64_t{1} << 20U, std::uint64_t{1} << 40U))
      ->capture_default_str();
  std::string queues = "default=4";
  serve_cmd
      ->add_option("--queues", queues,
                   "Queues and their workers: NAME=WORKERS[:WEIGHT[:PREFETCH]],...")
      ->envname("ERRAND_QUEUES")
      ->capture_default_str();
  serve_cmd
      ->add_option("--node-id", tasks.owner,
                   "This process's name among the nodes sharing a store (default host:pid:random)")
      ->envname("ERRAND_NODE_ID");
  std::string role = "all";
  serve_cmd
      ->add_option("--role", role,
                   "all (API and workers), api (API, no workers) or worker (workers; HTTP serves "
                   "only /healthz, /readyz, /metrics)")
      ->envname("ERRAND_ROLE")
      ->check(CLI::IsMember({"all", "api", "worker"}))
      ->capture_default_str();
  add_duration(*serve_cmd, "--node-timeout", tasks.node_silence, "ERRAND_NODE_TIMEOUT",
               "A node not heard from for this long is dropped from /v1/nodes (heartbeat: 5s)");
  add_duration(*serve_cmd, "--task-grace", tasks.shutdown_grace, "ERRAND_TASK_GRACE",
               "On shutdown, time for running tasks to finish before they are stopped");
  add_duration(*serve_cmd, "--progress-interval", tasks.progress_interval,
               "ERRAND_PROGRESS_INTERVAL",
               "A task's progress reports are written at most once per interval (the latest wins)");
  add_duration(*serve_cmd, "--lease", tasks.lease, "ERRAND_LEASE",
               "Lease of a running task; a crashed worker's tasks return after it expires");
  add_duration(*serve_cmd, "--retention", tasks.retention, "ERRAND_RETENTION",
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
      config.smtp.tls = smtp_tls == "starttls"   ? app::SmtpOptions::Tls::starttls
                        : smtp_tls == "implicit" ? app::SmtpOptions::Tls::implicit
                                                 : app::SmtpOptions::Tls::none;
      std::tie(http.address, http.port) = parse_listen(listen);
      config.log_level = observe::parse_level(log_level);
      config.log_format =
          log_format == "auto"
              ? (isatty(STDERR_FILENO) != 0 ? observe::Format::text : observe::Format::json)
              : observe::parse_format(log_format);
      for (const auto& r : rate_limits) config.rate_limits.push_back(parse_rate_limit(r));
      for (const auto& s : schedules) config.schedules.push_back(parse_schedule(s));
      for (const auto& r : concurrency_limits) {
        config.concurrency_limits.push_back(parse_concurrency_limit(r));
      }
      if (!queue_limits.empty()) tasks.queue_max_waiting = parse_queue_limits(queue_limits);
      if (store::is_redis_url(store_kind)) {
        config.store = app::Config::StoreKind::redis;
        config.redis.endpoint = store::parse_redis_url(store_kind);
        config.redis.connect_timeout =
            std::max(config.redis.connect_timeout, config.redis.command_timeout);
      } else {
        config.store = store_kind == "memory" ? app::Config::StoreKind::memory
                                              : app::Config::StoreKind::sqlite;
      }
      config.app.sqlite.synchronous = sync == "full" ? store::SqliteOptions::Synchronous::full
                                                     : store::SqliteOptions::Synchronous::normal;
      config.role = role == "api"      ? app::Config::Role::api
                    : role == "worker" ? app::Config::Role::worker
                                       : app::Config::Role::all;
      tasks.shutdown_abandon = http.shutdown_abandon;
      tasks.queues = parse_queues(queues);  // the rest is checked once, by app::serve's validate()
      if (trace_ratio) {
        config.app.tracing.sampler = "parentbased_traceidratio";
        config.app.tracing.sampler_ratio = *trace_ratio;
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

}  // namespace errand::cli
