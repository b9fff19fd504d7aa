#include "errand/observe/logger.hpp"
#include "errand/json/text.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <boost/json/serialize.hpp>

namespace errand::observe {
namespace {

class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(std::function<void(std::string_view)> fn) : fn_(std::move(fn)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    fn_(std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> fn_;
};

std::shared_ptr<spdlog::logger> make_logger(spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("errand", std::move(sink));
  // We format the whole JSON line ourselves; spdlog only owns the sink and its lock.
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", std::chrono::floor<std::chrono::seconds>(now),
                     ms.count() % 1000);
}

// A value as a person reads it: bare when it is a plain word or number.
void append_text_value(std::string& out, const boost::json::value& v) {
  if (v.is_string()) {
    const auto& str = v.as_string();
    const bool bare = !str.empty() && std::all_of(str.begin(), str.end(), [](char ch) {
      return ch > ' ' && ch != '"' && ch != '=' && static_cast<unsigned char>(ch) < 0x7f;
    });
    if (bare) {
      out.append(str.data(), str.size());
      return;
    }
  }
  out += json::to_text(v);  // quoted and escaped: no control characters reach a terminal
}

std::string text_line(const boost::json::object& line) {
  std::string out;
  out.reserve(128);
  out += line.at("ts").as_string();
  out += ' ';
  std::string level(line.at("level").as_string());
  std::transform(level.begin(), level.end(), level.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  out += fmt::format("{:<5} ", level);
  const auto& msg = line.at("msg");
  if (msg.is_string() && msg.as_string().find('\n') == boost::json::string::npos) {
    out.append(msg.as_string().data(), msg.as_string().size());
  } else {
    out += boost::json::serialize(msg);
  }
  for (const auto& kv : line) {
    const auto key = kv.key();
    if (key == "ts" || key == "level" || key == "msg") continue;
    out += ' ';
    out.append(key.data(), key.size());
    out += '=';
    append_text_value(out, kv.value());
  }
  return out;
}

}  // namespace

Format parse_format(std::string_view name) {
  if (name == "json") return Format::json;
  if (name == "text") return Format::text;
  throw std::invalid_argument(fmt::format("unknown log format '{}' (expected json or text)", name));
}

std::string_view to_string(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: return "off";
  }
  return "info";
}

Level parse_level(std::string_view name) {
  for (auto l : {Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (to_string(l) == name) return l;
  }
  throw std::invalid_argument(
      fmt::format("unknown log level '{}' (expected debug, info, warn, error or off)", name));
}

Logger::Logger(std::shared_ptr<spdlog::logger> impl, Level min_level, Format format, Fields bound)
    : impl_(std::move(impl)),
      min_level_(min_level),
      format_(format),
      bound_(std::make_shared<const Fields>(std::move(bound))) {}

Logger Logger::to_stderr(Level min_level, Format format) {
  return {make_logger(std::make_shared<spdlog::sinks::stderr_sink_mt>()), min_level, format, {}};
}

Logger Logger::to_callback(std::function<void(std::string_view)> sink, Level min_level,
                           Format format) {
  return {make_logger(std::make_shared<CallbackSink>(std::move(sink))), min_level, format, {}};
}

Logger Logger::null() {
  // One shared instance: every request's Exchange starts with a null logger,
  // and building an spdlog logger each time was 3% of a small request.
  static const Logger instance{
      make_logger(std::make_shared<spdlog::sinks::null_sink_mt>()), Level::off, Format::json, {}};
  return instance;
}

Logger Logger::with(Fields fields) const {
  for (const auto& kv : *bound_) {
    if (!fields.contains(kv.key())) fields.emplace(kv.key(), kv.value());
  }
  return {impl_, min_level_, format_, std::move(fields)};
}

bool Logger::enabled(Level level) const {
  return level != Level::off && level >= min_level_;
}

void Logger::log(Level level, std::string_view msg, Fields fields) const {
  if (!enabled(level)) return;
  Fields line;
  line.reserve(3 + fields.size() + bound_->size());
  line.emplace("ts", timestamp());
  line.emplace("level", to_string(level));
  line.emplace("msg", msg);
  for (auto& kv : fields) line.emplace(kv.key(), std::move(kv.value()));
  for (const auto& kv : *bound_) line.emplace(kv.key(), kv.value());  // emplace keeps the first
  impl_->log(spdlog::level::info, format_ == Format::text ? text_line(line) : json::to_text(line));
}

}  // namespace errand::observe
