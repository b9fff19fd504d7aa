// Gin:    a logging middleware with a request id (MDC), prometheus.NewCounterVec,
//         and hooks around background jobs
// errand: every log line of a task carries the enqueuing request's trace id
//         (t.log()), before/after hooks see every attempt (with its trace id),
//         and App::metrics() takes your own counters and histograms next to
//         task_execution_count and task_duration_seconds at GET /metrics.
//
//   tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//   curl -s localhost:8080/orders -H "traceparent: $tp" -d '{"amount_cents": 1250}'
//   curl -s localhost:8080/metrics | grep -E 'orders_|task_execution_count'
#include <boost/describe.hpp>
#include <errand/errand.hpp>

#include "../example_env.hpp"

struct Order {
  std::int64_t amount_cents = 0;
  void validate() const {
    if (amount_cents <= 0 || amount_cents > 100'000'000) {
      throw errand::json::BindError("amount_cents", "field 'amount_cents' must be 1 to 100000000");
    }
  }
};
BOOST_DESCRIBE_STRUCT(Order, (), (amount_cents))

int main() {
  auto options = example::options("observable");
  auto log = options.logger;
  // Hooks run on worker threads for every attempt of every task type.
  options.tasks.hooks.before_attempt = [log](const errand::tasks::AttemptInfo& a) {
    log.info("attempt starting", {{"task_id", a.id},
                                  {"type", a.type},
                                  {"attempt", a.attempt},
                                  {"trace_id", a.trace_id},
                                  {"waited_ms", a.waited.count()}});
  };
  options.tasks.hooks.after_attempt = [log](const errand::tasks::AttemptInfo& a,
                                            errand::tasks::AttemptOutcome outcome,
                                            std::chrono::nanoseconds took) {
    log.info("attempt finished",
             {{"task_id", a.id},
              {"type", a.type},
              {"outcome", errand::tasks::to_string(outcome)},
              {"trace_id", a.trace_id},
              {"took_ms", std::chrono::duration<double, std::milli>(took).count()}});
  };
  errand::App app(options);

  auto& processed = app.metrics().counter("orders_processed_total", "Orders charged", {"result"});
  auto& amounts = app.metrics().histogram("order_amount_dollars", "Order amounts", {},
                                          {1, 5, 10, 50, 100, 500, 1000});

  const auto process = app.tasks().handle<Order>(
      "order.process", [&](errand::tasks::TaskContext& t, const Order& o) {
        t.log().info("charging card", {{"amount_cents", o.amount_cents}});  // trace_id on this line
        processed.with({"ok"}).inc();
        amounts.get().observe(static_cast<double>(o.amount_cents) / 100.0);
        return errand::tasks::Outcome::done({{"charged_cents", o.amount_cents}});
      });
  app.http().post(
      "/orders",
      [&](errand::http::Context& c) {
        const auto id = app.enqueue(c, process, c.bind<Order>()).id;
        c.log().info("order accepted", {{"task_id", id}});  // request_id and trace_id here too
        c.json(202, {{"task_id", id}, {"trace_id", c.trace().trace_id}});
      },
      {.blocking = true});
  return app.run();
}
