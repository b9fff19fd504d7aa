#include "errand/app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>
#include <stdexcept>

#include <unistd.h>

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
    return std::invalid_argument(
        fmt::format("invalid queues '{}': {} (use NAME=WORKERS[:WEIGHT[:PREFETCH]],..., e.g. "
                    "default=4,mail=2:3)",
                    text, why));
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
    if (colon != std::string_view::npos) {
      auto tail = rest.substr(colon + 1);
      const auto second = tail.find(':');
      q.weight = number(tail.substr(0, second), 1, 1000);
      if (second != std::string_view::npos) q.prefetch = number(tail.substr(second + 1), 0, 4096);
    }
    out.push_back(std::move(q));
  }
  return out;
}

namespace {

// "PREFIX=REST" with PREFIX a path; REST split on ':'.
std::pair<std::string, std::vector<std::string_view>> split_rule(std::string_view text,
                                                                 std::string_view usage) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || text.front() != '/') {
    throw std::invalid_argument(fmt::format("invalid rule '{}' (use {})", text, usage));
  }
  std::vector<std::string_view> parts;
  auto rest = text.substr(eq + 1);
  while (true) {
    const auto colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  return {std::string(text.substr(0, eq)), std::move(parts)};
}

template <class T>
T number_in(std::string_view n, T lo, T hi, std::string_view rule, std::string_view what) {
  T v{};
  auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
  if (ec != std::errc{} || ptr != n.data() + n.size() || !(v >= lo) || !(v <= hi)) {
    throw std::invalid_argument(fmt::format(
        "invalid rule '{}': {} '{}' is not a number in [{}, {}]", rule, what, n, lo, hi));
  }
  return v;
}

}  // namespace

void check_token(std::string_view token) {
  // RFC 6750 b64token characters: no spaces or quotes, so what a client sends
  // after "Bearer " can match it exactly.
  const bool charset = std::all_of(token.begin(), token.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
           std::string_view("-._~+/=").find(ch) != std::string_view::npos;
  });
  if (token.size() < 16 || !charset) {
    throw std::invalid_argument(
        "--auth-token: a token is at least 16 characters of A-Z a-z 0-9 - . _ ~ + / = (use "
        "e.g. `openssl rand -hex 24`)");
  }
}

RateLimitRule parse_rate_limit(std::string_view text) {
  constexpr std::string_view usage =
      "PREFIX=RATE:BURST[:ip|global|header:NAME], e.g. /v1/tasks=100:200";
  auto [prefix, parts] = split_rule(text, usage);
  if (parts.size() < 2 || parts.size() > 4) {
    throw std::invalid_argument(fmt::format("invalid rate limit '{}' (use {})", text, usage));
  }
  RateLimitRule r;
  r.prefix = std::move(prefix);
  r.options.per_second = number_in(parts[0], 0.001, 1e9, text, "rate");
  r.options.burst = number_in(parts[1], 1.0, 1e9, text, "burst");
  using Key = http::mw::RateLimitOptions::Key;
  const auto key = parts.size() > 2 ? parts[2] : std::string_view("ip");
  if (key == "ip" && parts.size() <= 3) {
    r.options.key = Key::client_ip;
  } else if (key == "global" && parts.size() == 3) {
    r.options.key = Key::global;
  } else if (key == "header" && parts.size() == 4 && !parts[3].empty()) {
    r.options.key = Key::header;
    r.options.header = std::string(parts[3]);
  } else {
    throw std::invalid_argument(fmt::format("invalid rate limit '{}' (use {})", text, usage));
  }
  return r;
}

ConcurrencyRule parse_concurrency_limit(std::string_view text) {
  constexpr std::string_view usage = "PREFIX=MAX_IN_FLIGHT[:MAX_WAIT], e.g. /v1=64:2s";
  auto [prefix, parts] = split_rule(text, usage);
  if (parts.size() > 2) {
    throw std::invalid_argument(
        fmt::format("invalid concurrency limit '{}' (use {})", text, usage));
  }
  ConcurrencyRule r;
  r.options.name = prefix;
  r.prefix = std::move(prefix);
  r.options.max_in_flight = number_in<std::size_t>(parts[0], 1, 1'000'000, text, "max in flight");
  if (parts.size() == 2) r.options.max_wait = parse_duration(parts[1]);
  return r;
}

std::map<std::string, std::size_t, std::less<>> parse_queue_limits(std::string_view text) {
  std::map<std::string, std::size_t, std::less<>> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = std::min(text.find(',', pos), text.size());
    const auto item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const auto eq = item.find('=');
    const std::string name(item.substr(0, std::min(eq, item.size())));
    if (eq == std::string_view::npos || !tasks::valid_name(name)) {
      throw std::invalid_argument(fmt::format(
          "invalid queue limits '{}' (use NAME=MAX_WAITING,..., e.g. mail=1000)", text));
    }
    if (out.contains(name)) {
      throw std::invalid_argument(
          fmt::format("invalid queue limits '{}': queue '{}' is listed twice", text, name));
    }
    out[name] =
        number_in<std::size_t>(item.substr(eq + 1), 0, std::size_t{1} << 40U, text, "max waiting");
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

  std::string log_format = "auto";
  serve_cmd
      ->add_option("--log-format", log_format,
                   "json (one object per line), text (for people) or auto (text on a terminal)")
      ->envname("ERRAND_LOG_FORMAT")
      ->check(CLI::IsMember({"auto", "json", "text"}))
      ->capture_default_str();

  std::vector<std::string> rate_limits;
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
  std::vector<std::string> concurrency_limits;
  serve_cmd
      ->add_option("--concurrency-limit", concurrency_limits,
                   "Requests in flight per route group: PREFIX=MAX[:WAIT] (503 beyond); "
                   "repeatable")
      ->envname("ERRAND_CONCURRENCY_LIMITS")
      ->delimiter(',');
  serve_cmd
      ->add_option("--max-waiting", config.max_waiting,
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
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  add_duration(*serve_cmd, "--breaker-open", config.breaker.open_for, "ERRAND_BREAKER_OPEN",
               "http.request: how long an open circuit fails fast before one probe");

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
  serve_cmd
      ->add_option("--queues", queues,
                   "Queues and their workers: NAME=WORKERS[:WEIGHT[:PREFETCH]],...")
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
      config.log_format =
          log_format == "auto"
              ? (isatty(STDERR_FILENO) != 0 ? observe::Format::text : observe::Format::json)
              : observe::parse_format(log_format);
      for (const auto& r : rate_limits) config.rate_limits.push_back(parse_rate_limit(r));
      for (const auto& r : concurrency_limits) {
        auto rule = parse_concurrency_limit(r);
        if (rule.options.max_wait.count() > 0 &&
            rule.options.max_in_flight >= config.http.blocking_threads) {
          throw std::invalid_argument(fmt::format(
              "--concurrency-limit {}: {} in flight with waiting needs more --blocking-threads "
              "than that ({} now): each waiting request holds a blocking thread",
              r, rule.options.max_in_flight, config.http.blocking_threads));
        }
        config.concurrency_limits.push_back(std::move(rule));
      }
      if (!queue_limits.empty()) config.queue_max_waiting = parse_queue_limits(queue_limits);
      for (const auto& t : config.auth_tokens) check_token(t);
      for (const auto& p : config.auth_public) {
        // "" or "/" would leave every route open: a typo must not turn auth off.
        if (p.size() < 2 || p.front() != '/') {
          throw std::invalid_argument(fmt::format(
              "--auth-public: '{}' is not a route prefix like /healthz (\"/\" would make every "
              "route public)",
              p));
        }
      }
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
