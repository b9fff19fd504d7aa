// Gin:    ctx, cancel := context.WithTimeout(c.Request.Context(), 500*time.Millisecond)
//         select { case <-done: ... case <-ctx.Done(): c.JSON(408, ...) }
//         and a long job that watches ctx.Done() so it can be cancelled
// errand: http::mw::timeout gives the request a deadline: the client gets 408
//         at the deadline and the handler's stop_token is requested. A long
//         task checks its own stop token (sleep_for wakes on it) and ends
//         `cancelled` when someone calls POST /v1/tasks/{id}/cancel — on this
//         process or any other sharing the store.
//
//   curl -si 'localhost:8080/slow/work?ms=100'     # 200
//   curl -si 'localhost:8080/slow/work?ms=5000'    # 408 after 500 ms
//   curl -s -X POST localhost:8080/crunch          # 202 {"id":...}
//   curl -s -X POST localhost:8080/v1/tasks/<id>/cancel
#include <errand/app/task_api.hpp>
#include <errand/errand.hpp>

#include "../example_env.hpp"

int main() {
  errand::App app(example::options("timeout"));

  auto slow = app.http().group("/slow");
  slow.use(errand::http::mw::timeout({.after = std::chrono::milliseconds(500)}));
  slow.get("/work",
           [](errand::http::Context& c) {
             const int ms = example::query_int(c, "ms", 100, 0, 60'000);
             const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
             while (std::chrono::steady_clock::now() < until) {
               if (c.stop_requested()) return;  // the deadline passed: the 408 is already sent
               std::this_thread::sleep_for(std::chrono::milliseconds(10));
             }
             c.json(200, {{"worked_ms", ms}});
           },
           {.blocking = true});

  // Ten minutes of work in steps; every step checks for cancellation.
  app.tasks().handle_raw(
      "crunch",
      [](errand::tasks::TaskContext& t) {
        for (int step = 1; step <= 6000; ++step) {
          if (!t.sleep_for(std::chrono::milliseconds(100))) {
            t.log().info("crunch stopped",
                         {{"step", step}, {"reason", errand::tasks::to_string(t.stop_reason())}});
            return errand::tasks::Outcome::cancelled();
          }
          if (step % 10 == 0) t.progress(step / 60, "crunching");
        }
        return errand::tasks::Outcome::done({{"steps", 6000}});
      },
      {.timeout = std::chrono::minutes(15)});
  app.http().post("/crunch",
                  [&](errand::http::Context& c) {
                    c.json(202, {{"id", app.enqueue(c, "crunch", {}).id}});
                  },
                  {.blocking = true});

  errand::app::install_task_api(app.http(), app.tasks());  // status and cancel
  return app.run();
}
