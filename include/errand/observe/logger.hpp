#pragma once
// Structured logging as JSON lines: {"ts":..,"level":..,"msg":..,<fields>}.
//
// Logger is a cheap handle (a shared_ptr inside): copy it into any thread. Every
// call writes one whole line atomically; sinks are spdlog's, so a slow terminal
// slows the caller but never interleaves lines. Fields bound with with() are
// added to every line (request_id, trace_id, task_id ...), which is how trace ids
// reach every log line without a global.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace spdlog {
class logger;
}

namespace errand::observe {

enum class Level { debug, info, warn, error, off };

// json: one JSON object per line, for log shippers. text: for people at a
// terminal — `2026-11-24T21:00:00.123Z INFO  msg key=value ...`, values
// quoted only when they need it. Both carry the same fields.
enum class Format { json, text };

[[nodiscard]] std::string_view to_string(Level level);
// "debug" | "info" | "warn" | "error" | "off"; throws std::invalid_argument otherwise.
[[nodiscard]] Level parse_level(std::string_view name);
// "json" | "text"; throws std::invalid_argument otherwise.
[[nodiscard]] Format parse_format(std::string_view name);

class Logger {
 public:
  using Fields = boost::json::object;

  // Writes to stderr.
  [[nodiscard]] static Logger to_stderr(Level min_level = Level::info,
                                        Format format = Format::json);
  // Hands each finished line (no trailing newline) to `sink`, serialised by a mutex.
  [[nodiscard]] static Logger to_callback(std::function<void(std::string_view)> sink,
                                          Level min_level = Level::debug,
                                          Format format = Format::json);
  // Discards everything.
  [[nodiscard]] static Logger null();

  // A logger that adds `fields` to every line (after the caller's own fields).
  [[nodiscard]] Logger with(Fields fields) const;

  [[nodiscard]] bool enabled(Level level) const;
  void log(Level level, std::string_view msg, Fields fields = {}) const;
  void debug(std::string_view msg, Fields fields = {}) const {
    log(Level::debug, msg, std::move(fields));
  }
  void info(std::string_view msg, Fields fields = {}) const {
    log(Level::info, msg, std::move(fields));
  }
  void warn(std::string_view msg, Fields fields = {}) const {
    log(Level::warn, msg, std::move(fields));
  }
  void error(std::string_view msg, Fields fields = {}) const {
    log(Level::error, msg, std::move(fields));
  }

 private:
  Logger(std::shared_ptr<spdlog::logger> impl, Level min_level, Format format, Fields bound);

  std::shared_ptr<spdlog::logger> impl_;
  Level min_level_;
  Format format_;
  std::shared_ptr<const Fields> bound_;
};

}  // namespace errand::observe
