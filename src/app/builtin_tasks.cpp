#include "errand/app/builtin_tasks.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/describe.hpp>

namespace errand::app {

struct DemoSleep {
  std::optional<double> seconds;
  std::optional<int> steps;
  std::optional<int> fail_attempts;

  // Checked at enqueue time (Registry calls validate() on typed payloads).
  void validate() const {
    if (seconds && !(*seconds >= 0 && *seconds <= 3600)) {
      throw json::BindError("seconds", "field 'seconds' must be within 0..3600");
    }
    if (steps && (*steps < 1 || *steps > 1000)) {
      throw json::BindError("steps", "field 'steps' must be within 1..1000");
    }
    if (fail_attempts && (*fail_attempts < 0 || *fail_attempts > 1000)) {
      throw json::BindError("fail_attempts", "field 'fail_attempts' must be within 0..1000");
    }
  }
};
BOOST_DESCRIBE_STRUCT(DemoSleep, (), (seconds, steps, fail_attempts))

void register_demo_sleep(tasks::Runtime& runtime) {
  runtime.handle<DemoSleep>("demo.sleep", [](tasks::TaskContext& t, const DemoSleep& in) {
    const double seconds = in.seconds.value_or(5.0);
    const int steps = in.steps.value_or(std::max(1, static_cast<int>(std::ceil(seconds))));
    if (t.attempt() <= in.fail_attempts.value_or(0)) {
      throw std::runtime_error(
          fmt::format("demo.sleep: failing attempt {} on purpose", t.attempt()));
    }
    const auto step = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 / steps));
    for (int i = 1; i <= steps; ++i) {
      if (!t.sleep_for(step)) return tasks::Outcome::cancelled();
      t.progress(i * 100 / steps, fmt::format("step {}/{}", i, steps));
    }
    return tasks::Outcome::done({{"slept_ms", step.count() * steps}, {"steps", steps}});
  });
}

std::shared_ptr<guard::CircuitBreakers> register_builtin_tasks(
    tasks::Runtime& runtime, const SmtpOptions& smtp, observe::Registry* metrics,
    guard::CircuitBreaker::Options breaker) {
  register_demo_sleep(runtime);
  // Does nothing and succeeds: for benchmarks and smoke tests.
  runtime.handle_raw("demo.noop", [](tasks::TaskContext&) {});
  auto circuits = register_http_request(runtime, metrics, breaker);
  if (!smtp.host.empty()) register_email_send(runtime, smtp);
  return circuits;
}

}  // namespace errand::app
