#pragma once
// Typed per-request values: a Key<T> names a slot of type T. Keys are compared by
// address, so two libraries can never collide on a string, and get() needs no
// cast at the call site:
//
//   inline const errand::http::Key<User> current_user{"current_user"};
//   c.set(current_user, User{...});
//   if (const User* u = c.get(current_user)) ...
//
// Values are immutable once stored (set() replaces, never mutates), so a
// snapshot can share them with other threads without copying or locking.

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace errand::http {

template <class T>
class Key {
 public:
  constexpr explicit Key(std::string_view name) : name_(name) {}
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  [[nodiscard]] constexpr std::string_view name() const { return name_; }

 private:
  std::string_view name_;
};

// Not thread-safe to modify; safe to read from any thread once no one modifies it.
class Values {
 public:
  template <class T>
  void set(const Key<T>& key, T value) {
    put(&key, std::make_shared<const T>(std::move(value)));
  }
  template <class T>
  [[nodiscard]] const T* get(const Key<T>& key) const {
    return static_cast<const T*>(find(&key));
  }
  [[nodiscard]] bool empty() const { return slots_.empty(); }

 private:
  void put(const void* key, std::shared_ptr<const void> value) {
    for (auto& slot : slots_) {
      if (slot.first == key) {
        slot.second = std::move(value);
        return;
      }
    }
    slots_.emplace_back(key, std::move(value));
  }
  [[nodiscard]] const void* find(const void* key) const {
    for (const auto& slot : slots_) {
      if (slot.first == key) return slot.second.get();
    }
    return nullptr;
  }

  std::vector<std::pair<const void*, std::shared_ptr<const void>>> slots_;
};

}  // namespace errand::http
