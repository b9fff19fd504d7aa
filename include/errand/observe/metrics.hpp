#pragma once
// Metrics: counters, gauges and histograms with labels, exposed in the
// Prometheus text format (version 0.0.4) by Registry::expose().
//
//   auto& requests = registry.counter("http_requests_total", "HTTP requests",
//                                     {"method", "route", "status"});
//   requests.with({"GET", "/v1/tasks/:id", "200"}).inc();
//
// Thread-safety: everything. A series (one label combination) is created once
// under a lock and never moves, so callers may keep the reference `with()`
// returns. Finding a series that exists takes no lock and writes nothing
// shared; updating it writes the stripe of the CPU it runs on
// (striped_slots.hpp): threads on different cores share no written cache
// line on the per-request path.
// Cardinality is bounded: a family holds at most `max_series` label
// combinations; further ones are counted in a single series whose label
// values are all "other" (and a log-free counter says how often that happened:
// metrics_series_overflow_total). Label values should come from bounded sets
// (route templates, never raw paths).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "errand/observe/striped_slots.hpp"

namespace errand::observe {

// Counters, gauges and histograms keep a value per stripe (StripedSlots):
// threads on different cores that write one series write different cache
// lines, and a scrape sums them.
class Counter {
 public:
  Counter() : cells_(1) {}
  void inc(double by = 1.0) { cells_.add_double(0, by); }
  [[nodiscard]] double value() const { return cells_.sum_double(0); }

 private:
  detail::StripedSlots cells_;
};

// set() stores one shared value, less what add()s have put in the stripes
// (sets are rare: a limit, a depth); add() writes a stripe. A gauge only set
// reads back exactly what was set; one both added to and set reads back its
// value a rounding away when that is not an integer (and stays NaN once a
// NaN or an infinity was added). An add() racing a set() lands before or
// after it, never lost.
class Gauge {
 public:
  Gauge() : cells_(1) {}
  // Release and acquire: a reader that sees the new base sees the stripes
  // at least as set() read them (on weakly ordered CPUs too).
  void set(double v) { base_.store(v - cells_.sum_double(0), std::memory_order_release); }
  void add(double by) { cells_.add_double(0, by); }
  [[nodiscard]] double value() const {
    const double base = base_.load(std::memory_order_acquire);
    return base + cells_.sum_double(0);
  }

 private:
  std::atomic<double> base_{0.0};
  detail::StripedSlots cells_;
};

// An observation that links a histogram bucket to a trace (OpenMetrics
// exemplar): the latest one per bucket is kept.
struct Exemplar {
  std::string trace_id;  // 32 hex digits
  double value = 0;
  double timestamp = 0;  // seconds since the epoch
};

class Histogram {
 public:
  // `bounds`: upper bounds of the buckets, ascending; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // The same, and the bucket's exemplar becomes (trace_id, v, now) when
  // `trace_id` is not empty. Never waits: when another thread is writing
  // an exemplar of this histogram, this one is skipped (it is a sample).
  void observe(double v, std::string_view trace_id);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
    std::vector<Exemplar> exemplars;  // per bound, then +Inf; empty trace_id: none
  };
  [[nodiscard]] Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  detail::StripedSlots cells_;  // a count per bound, then +Inf, then the sum
  mutable std::mutex exemplar_mu_;
  std::vector<Exemplar> exemplars_;  // guarded by exemplar_mu_; sized on first use
};

// Seconds from 0.5 ms to 60 s: request and task durations.
[[nodiscard]] std::vector<double> duration_buckets();

namespace detail {

// A family's series found without a lock: an open-addressed table of
// pointers, each published once (release) and never changed or removed, so
// that a reader loads and compares. Sized for the family's series and its
// "other" series, up to 4,096 in all, at most half full; series past that
// are found under the family's lock instead.
// publish() is called under the family's lock; find() from any thread.
class SeriesIndex {
 public:
  explicit SeriesIndex(std::size_t max_series);
  ~SeriesIndex();
  SeriesIndex(const SeriesIndex&) = delete;
  SeriesIndex& operator=(const SeriesIndex&) = delete;

  [[nodiscard]] static std::size_t hash(std::span<const std::string_view> values) noexcept;
  // The series published for exactly these values, or nullptr.
  [[nodiscard]] void* find(std::size_t hash,
                           std::span<const std::string_view> values) const noexcept;
  // `key` and `series` outlive the index (they are the family's).
  void publish(std::size_t hash, const std::vector<std::string>& key, void* series);

 private:
  struct Entry {
    std::size_t hash;
    const std::vector<std::string>* key;
    void* series;
  };
  std::size_t mask_;
  std::size_t used_ = 0;
  std::unique_ptr<std::atomic<const Entry*>[]> slots_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace detail

template <class M>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::size_t max_series,
         std::function<std::unique_ptr<M>()> make, Counter* overflow)
      : label_names_(std::move(label_names)),
        max_series_(max_series),
        make_(std::move(make)),
        overflow_(overflow),
        index_(max_series_) {}

  // The series for these label values (as many as the family has names).
  // Finding an existing series allocates nothing: it runs on every request.
  M& with(std::initializer_list<std::string_view> values) {
    if (values.size() == label_names_.size()) {
      const std::span<const std::string_view> v(values.begin(), values.size());
      if (void* found = index_.find(detail::SeriesIndex::hash(v), v)) {
        return *static_cast<M*>(found);
      }
      const std::shared_lock lock(mu_);
      if (auto it = series_.find(values); it != series_.end()) return *it->second;
    }
    std::vector<std::string> key(values.begin(), values.end());
    key.resize(label_names_.size());
    const std::unique_lock lock(mu_);
    if (auto it = series_.find(key); it != series_.end()) return *it->second;
    if (series_.size() >= max_series_) {
      if (overflow_ != nullptr) overflow_->inc();
      key.assign(label_names_.size(), "other");
      if (auto it = series_.find(key); it != series_.end()) return *it->second;
    }
    auto it = series_.emplace(std::move(key), make_()).first;
    std::vector<std::string_view> stored(it->first.begin(), it->first.end());
    index_.publish(detail::SeriesIndex::hash(stored), it->first, it->second.get());
    return *it->second;
  }
  // Without labels.
  M& get() { return with({}); }

  [[nodiscard]] const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls f(label values, series) for each series, in label order.
  template <class F>
  void each(F&& f) const {
    const std::shared_lock lock(mu_);
    for (const auto& [values, m] : series_) f(values, *m);
  }

 private:
  std::vector<std::string> label_names_;
  std::size_t max_series_;
  std::function<std::unique_ptr<M>()> make_;
  Counter* overflow_;
  // Orders stored keys and looked-up values alike, so that a lookup need not
  // build a vector of strings.
  struct KeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(
          a.begin(), a.end(), b.begin(), b.end(),
          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>, KeyLess> series_;
  detail::SeriesIndex index_;  // the series above, for lookups without the lock
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering a name twice returns the first family if the kind and labels
  // match; otherwise throws std::invalid_argument. Names: [a-zA-Z_:][a-zA-Z0-9_:]*.
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> labels = {}, std::size_t max_series = 1000);
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> labels = {}, std::size_t max_series = 1000);
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> labels = {},
                               std::vector<double> bounds = duration_buckets(),
                               std::size_t max_series = 1000);
  // Gauges computed when scraped (queue depths, process memory): `collect`
  // returns (label values, value) pairs. It runs on the scraping thread.
  using Samples = std::vector<std::pair<std::vector<std::string>, double>>;
  void gauge_callback(const std::string& name, const std::string& help,
                      std::vector<std::string> labels, std::function<Samples()> collect);

  // The exposition of every family, sorted by name: the Prometheus text
  // format (0.0.4), or OpenMetrics 1.0 with the histograms' exemplars (what
  // a scraper asking for application/openmetrics-text gets).
  enum class Format : std::uint8_t { prometheus, openmetrics };
  [[nodiscard]] std::string expose(Format format = Format::prometheus) const;
  // The Content-Type of `format`.
  [[nodiscard]] static std::string_view content_type(Format format);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::observe
