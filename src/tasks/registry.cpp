#include "errand/tasks/registry.hpp"

#include <stdexcept>

namespace errand::tasks {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void Registry::add(TaskType type) {
  if (frozen_.load(std::memory_order_acquire)) {
    throw std::logic_error("task type '" + type.name +
                           "': register task types before the runtime starts");
  }
  if (!valid_name(type.name)) {
    throw std::invalid_argument("task type '" + type.name +
                                "': names are 1-128 characters of A-Z a-z 0-9 . _ : -");
  }
  if (!valid_name(type.options.queue)) {
    throw std::invalid_argument("task type '" + type.name + "': bad queue name '" +
                                type.options.queue + "'");
  }
  if (type.options.max_attempts < 1) {
    throw std::invalid_argument("task type '" + type.name + "': max_attempts must be at least 1");
  }
  if (type.options.rate_limit &&
      (!(type.options.rate_limit->per_second > 0) || !(type.options.rate_limit->burst >= 1))) {
    throw std::invalid_argument("task type '" + type.name +
                                "': rate_limit needs per_second > 0 and burst >= 1");
  }
  if (!type.handler) throw std::invalid_argument("task type '" + type.name + "': no handler");
  const std::string name = type.name;
  if (!types_.emplace(name, std::move(type)).second) {
    throw std::invalid_argument("task type '" + name + "' is registered twice");
  }
}

const TaskType* Registry::find(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

}  // namespace errand::tasks
