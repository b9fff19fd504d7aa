#pragma once
// Task types and their handlers. Register every type before Runtime::start():
// start() freezes the registry, a later add() throws std::logic_error (as
// Router does for late routes), and workers read it without locks.
//
// A typed handler gets its payload bound from JSON (a BOOST_DESCRIBE_STRUCT,
// see errand/json/bind.hpp); enqueueing a payload that does not bind is
// refused at enqueue time, naming the field — and so is a field T does not
// have, unless T declares a free-form payload
// (`static constexpr json::Unknown unknown_fields = json::Unknown::ignore;`). If T has `void
// validate() const` (throwing json::BindError), it runs at enqueue time too, for range checks. A
// raw handler gets the JSON. Handlers may return Outcome or void (void: done, no result).

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/json/value.hpp>

#include "errand/json/bind.hpp"
#include "errand/tasks/outcome.hpp"
#include "errand/tasks/retry_policy.hpp"
#include "errand/tasks/task.hpp"
#include "errand/tasks/task_context.hpp"

namespace errand::tasks {

struct RateLimit {
  double per_second = 10;  // sustained rate across this process's workers
  double burst = 1;        // tasks that may start back to back
};

// Defaults for a type; EnqueueOptions override them per task.
struct TaskOptions {
  std::string queue = "default";
  int priority = 0;
  int max_attempts = 25;
  std::optional<std::chrono::milliseconds> timeout{};  // nullopt: RuntimeConfig::default_timeout
  std::optional<RetryPolicy> retry{};                  // nullopt: RuntimeConfig::retry
  std::optional<RateLimit> rate_limit{};               // tasks wait their turn; they never fail
};

using RawHandler = std::function<Outcome(TaskContext&)>;
// Throws json::BindError when a payload does not fit the handler's type.
using PayloadCheck = std::function<void(const boost::json::value&)>;

struct TaskType {
  std::string name;
  RawHandler handler;
  PayloadCheck check;  // empty: any JSON
  TaskOptions options;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Throws std::invalid_argument for a bad or duplicate name or bad options,
  // std::logic_error once frozen.
  void add(TaskType type);
  // Read-only from now on (Runtime::start() calls it). Idempotent.
  void freeze() noexcept { frozen_.store(true, std::memory_order_release); }
  [[nodiscard]] bool frozen() const noexcept { return frozen_.load(std::memory_order_acquire); }

  template <class F>
  void handle_raw(std::string name, F handler, TaskOptions options = {}) {
    add({std::move(name),
         wrap([h = std::move(handler)](TaskContext& t) { return h(t); }),
         {},
         std::move(options)});
  }

  // Returns the typed handle that enqueue(task, payload) takes (task.hpp).
  template <class T, class F>
  Task<T> handle(std::string name, F handler, TaskOptions options = {}) {
    Task<T> task(name);
    add({std::move(name), wrap([h = std::move(handler)](TaskContext& t) {
           // Checked strictly at enqueue; read leniently here, so a task stored
           // before a field was removed from T still runs.
           T in = json::from_json<T>(t.payload());
           return h(t, in);
         }),
         [](const boost::json::value& v) {
           const T in = json::from_json<T>(v, json::Unknown::reject);
           if constexpr (requires { in.validate(); }) in.validate();  // may throw BindError
         },
         std::move(options)});
    return task;
  }

  [[nodiscard]] const TaskType* find(std::string_view name) const;
  [[nodiscard]] const std::map<std::string, TaskType, std::less<>>& types() const { return types_; }

 private:
  template <class G>
  static RawHandler wrap(G g) {
    return [g = std::move(g)](TaskContext& t) -> Outcome {
      if constexpr (std::is_void_v<decltype(g(t))>) {
        g(t);
        return Outcome::done();
      } else {
        return g(t);
      }
    };
  }

  std::map<std::string, TaskType, std::less<>> types_;
  std::atomic<bool> frozen_{false};
};

// Names of types and queues: 1..128 of [A-Za-z0-9._:-].
[[nodiscard]] bool valid_name(std::string_view name);

}  // namespace errand::tasks
