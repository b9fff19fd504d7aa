#pragma once
// tasks::Task<T>: a task type as the compiler sees it — the name it was
// registered under and its payload type. Only registration makes one
// (`auto welcome = app.tasks().handle<Welcome>("email.welcome", …);`), and
// enqueue(welcome, Welcome{…}) takes it, so a misspelt name or a payload of
// the wrong type is a compile error instead of a 400 `unknown_task_type` at
// run time. The string forms stay for the REST API and dynamic use.
//
// A small value: copy it into handlers and other threads freely.

#include <string>
#include <utility>

namespace errand::tasks {

class Registry;

template <class T>
class Task {
 public:
  using Payload = T;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend class Registry;
  explicit Task(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace errand::tasks
