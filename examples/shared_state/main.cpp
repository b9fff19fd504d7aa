// Gin:    var mu sync.Mutex; counter++        and        var cache sync.Map
// errand: handlers run on several I/O threads at once, so shared state is a
//         std::atomic or guarded by a mutex — the same discipline, checked by
//         ThreadSanitizer in CI (tests/examples/shared_state_test.cpp). The
//         cache is bounded: a new key past its capacity is refused, not stored.
//
//   curl -s -X POST localhost:8080/counter          # {"value":1}
//   curl -s -X PUT localhost:8080/cache/greeting -d 'hello'
//   curl -s localhost:8080/cache/greeting           # {"key":"greeting","value":"hello"}
#include <atomic>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include <errand/errand.hpp>

#include "../example_env.hpp"

// sync.Map's job: many readers at once, one writer at a time.
class Cache {
 public:
  explicit Cache(std::size_t capacity) : capacity_(capacity) {}

  [[nodiscard]] std::optional<std::string> get(const std::string& key) const {
    const std::shared_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  // False when the key is new and the cache is full.
  bool put(const std::string& key, std::string value) {
    const std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second = std::move(value);
      return true;
    }
    if (map_.size() >= capacity_) return false;
    map_.emplace(key, std::move(value));
    return true;
  }
  [[nodiscard]] std::size_t size() const {
    const std::shared_lock lock(mu_);
    return map_.size();
  }

 private:
  std::size_t capacity_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::string> map_;  // guarded by mu_
};

int main() {
  errand::App app(example::options("shared_state"));
  std::atomic<std::int64_t> counter{0};
  Cache cache(10'000);

  auto& r = app.http();
  r.post("/counter", [&](errand::http::Context& c) { c.json(200, {{"value", ++counter}}); });
  r.get("/counter", [&](errand::http::Context& c) { c.json(200, {{"value", counter.load()}}); });
  r.put("/cache/:key", [&](errand::http::Context& c) {
    const std::string key(c.param("key"));
    if (c.body().size() > 4096)
      throw errand::http::Error(413, "value_too_large", "at most 4096 bytes");
    if (!cache.put(key, std::string(c.body()))) {
      throw errand::http::Error(507, "cache_full", "the cache holds 10000 keys; no new ones");
    }
    c.status(204);
  });
  r.get("/cache/:key", [&](errand::http::Context& c) {
    const std::string key(c.param("key"));
    const auto value = cache.get(key);
    if (!value) throw errand::http::Error(404, "not_cached", "no value for " + key);
    c.json(200, {{"key", key}, {"value", *value}});
  });
  r.get("/cache", [&](errand::http::Context& c) { c.json(200, {{"size", cache.size()}}); });
  return app.run();
}
