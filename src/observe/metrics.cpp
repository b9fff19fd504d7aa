#include "errand/observe/metrics.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

namespace errand::observe {

namespace {
std::vector<double> sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(sorted(std::move(bounds))), cells_(bounds_.size() + 2) {}

void Histogram::observe(double v) {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  cells_.add(i, 1);
  cells_.add_double(bounds_.size() + 1, v);
}

void Histogram::observe(double v, std::string_view trace_id) {
  observe(v);
  if (trace_id.empty()) return;
  const std::unique_lock lock(exemplar_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  if (exemplars_.empty()) exemplars_.resize(bounds_.size() + 1);
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  auto& e = exemplars_[i];
  e.trace_id.assign(trace_id);
  e.value = v;
  e.timestamp =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  {
    const std::scoped_lock lock(exemplar_mu_);
    s.exemplars = exemplars_;
  }
  s.bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += cells_.sum(i);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = cells_.sum_double(bounds_.size() + 1);
  return s;
}

std::vector<double> duration_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

namespace detail {

namespace {
// Series past this many are found under the family's lock: the index stays
// a fixed table of at most 8,192 pointers (64 KiB) whatever max_series is.
constexpr std::size_t kIndexedSeries = 4096;
}  // namespace

// One more than max_series: the "other" series past it.
SeriesIndex::SeriesIndex(std::size_t max_series)
    : mask_(std::bit_ceil(2 * (std::min(max_series, kIndexedSeries - 1) + 1)) - 1),
      slots_(std::make_unique<std::atomic<const Entry*>[]>(mask_ + 1)) {}

SeriesIndex::~SeriesIndex() = default;

std::size_t SeriesIndex::hash(std::span<const std::string_view> values) noexcept {
  std::size_t h = values.size();
  for (const auto v : values) {
    // boost::hash_combine's mixing, over each value's own hash, so that
    // {"ab", "c"} and {"a", "bc"} differ.
    h ^= std::hash<std::string_view>{}(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

void* SeriesIndex::find(std::size_t hash, std::span<const std::string_view> values) const noexcept {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Entry* e = slots_[i].load(std::memory_order_acquire);
    if (e == nullptr) return nullptr;  // at most half full: an empty slot ends every probe
    if (e->hash == hash &&
        std::equal(values.begin(), values.end(), e->key->begin(), e->key->end())) {
      return e->series;
    }
  }
}

void SeriesIndex::publish(std::size_t hash, const std::vector<std::string>& key, void* series) {
  if (2 * (used_ + 1) > mask_ + 1) return;  // full: found under the lock
  entries_.push_back(std::make_unique<Entry>(Entry{hash, &key, series}));
  std::size_t i = hash & mask_;
  while (slots_[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & mask_;
  slots_[i].store(entries_.back().get(), std::memory_order_release);
  ++used_;
}

}  // namespace detail

namespace {

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string escape(std::string_view s, bool quotes) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="1",b="2"} (with `extra` appended, for le=); "" when there are none.
std::string label_text(const std::vector<std::string>& names,
                       const std::vector<std::string>& values, std::string_view extra = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape(i < values.size() ? values[i] : "", true) + "\"";
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

struct Registry::Impl {
  struct Callback {
    std::vector<std::string> labels;
    std::function<Samples()> collect;
  };
  struct Entry {
    std::string type;  // counter | gauge | histogram
    std::string help;
    std::vector<std::string> labels;
    std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                 std::unique_ptr<Family<Histogram>>, Callback>
        family;
  };
  mutable std::mutex mu;
  std::map<std::string, Entry> entries;
  Counter* overflow = nullptr;

  template <class M>
  Family<M>& add(const std::string& name, const std::string& help, const char* type,
                 std::vector<std::string> labels, std::size_t max_series,
                 std::function<std::unique_ptr<M>()> make) {
    if (!valid_metric_name(name)) throw std::invalid_argument("metric name '" + name + "'");
    for (const auto& l : labels) {
      if (!valid_metric_name(l) || l.find(':') != std::string::npos || l == "le") {
        throw std::invalid_argument(fmt::format("metric {}: label name '{}'", name, l));
      }
    }
    const std::lock_guard lock(mu);
    if (auto it = entries.find(name); it != entries.end()) {
      auto* existing = std::get_if<std::unique_ptr<Family<M>>>(&it->second.family);
      if (existing == nullptr || it->second.labels != labels) {
        throw std::invalid_argument("metric " + name +
                                    " is registered with another kind or labels");
      }
      return **existing;
    }
    auto family = std::make_unique<Family<M>>(labels, std::max<std::size_t>(max_series, 1),
                                              std::move(make), overflow);
    auto& ref = *family;
    entries.emplace(name, Entry{type, help, std::move(labels), std::move(family)});
    return ref;
  }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {
  impl_->overflow = &counter("metrics_series_overflow_total",
                             "Label combinations folded into an \"other\" series because a "
                             "family reached its series limit")
                         .get();
}

Registry::~Registry() = default;

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels, std::size_t max_series) {
  return impl_->add<Counter>(name, help, "counter", std::move(labels), max_series,
                             [] { return std::make_unique<Counter>(); });
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels, std::size_t max_series) {
  return impl_->add<Gauge>(name, help, "gauge", std::move(labels), max_series,
                           [] { return std::make_unique<Gauge>(); });
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels, std::vector<double> bounds,
                                       std::size_t max_series) {
  return impl_->add<Histogram>(name, help, "histogram", std::move(labels), max_series,
                               [b = std::move(bounds)] { return std::make_unique<Histogram>(b); });
}

void Registry::gauge_callback(const std::string& name, const std::string& help,
                              std::vector<std::string> labels, std::function<Samples()> collect) {
  if (!valid_metric_name(name)) throw std::invalid_argument("metric name '" + name + "'");
  const std::lock_guard lock(impl_->mu);
  if (impl_->entries.contains(name)) {
    throw std::invalid_argument("metric " + name + " is registered twice");
  }
  auto copy = labels;
  impl_->entries.emplace(name, Impl::Entry{"gauge", help, std::move(copy),
                                           Impl::Callback{std::move(labels), std::move(collect)}});
}

std::string_view Registry::content_type(Format format) {
  return format == Format::openmetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string Registry::expose(Format format) const {
  const bool om = format == Format::openmetrics;
  // Callbacks run outside the registry lock: they may be slow (a store query).
  std::vector<std::pair<std::string, const Impl::Entry*>> order;
  {
    const std::lock_guard lock(impl_->mu);
    for (const auto& [name, e] : impl_->entries) order.emplace_back(name, &e);
  }
  std::string out;
  for (const auto& [name, e] : order) {
    // OpenMetrics names a counter's family without its "_total", which its
    // samples carry. A counter registered without that suffix keeps its
    // series name in both formats, typed "unknown" in OpenMetrics (whose
    // counters must end in _total), so dashboards see one name.
    std::string family = name;
    std::string type = e->type;
    if (om && type == "counter") {
      if (family.ends_with("_total")) {
        family.resize(family.size() - 6);
      } else {
        type = "unknown";
      }
    }
    const std::string& sample = name;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family, escape(e->help, om), family, type);
    std::visit(
        [&, &n = sample, &labels = e->labels](const auto& f) {
          using T = std::decay_t<decltype(f)>;
          if constexpr (std::is_same_v<T, Impl::Callback>) {
            Samples samples;
            try {
              samples = f.collect();
            } catch (const std::exception&) {
              return;  // a failing source leaves its samples out of this scrape
            }
            for (const auto& [values, v] : samples) {
              out += n + label_text(labels, values) + " " + number(v) + "\n";
            }
          } else if constexpr (std::is_same_v<T, std::unique_ptr<Family<Histogram>>>) {
            f->each([&](const std::vector<std::string>& values, const Histogram& h) {
              const auto s = h.snapshot();
              // "# {trace_id="…"} value timestamp" after a bucket: OpenMetrics only.
              const auto exemplar = [&](std::size_t i) {
                if (!om || i >= s.exemplars.size() || s.exemplars[i].trace_id.empty()) {
                  return std::string();
                }
                const auto& x = s.exemplars[i];
                return fmt::format(" # {{trace_id=\"{}\"}} {} {:.3f}", escape(x.trace_id, true),
                                   number(x.value), x.timestamp);
              };
              for (std::size_t i = 0; i < s.bounds.size(); ++i) {
                out += n + "_bucket" +
                       label_text(labels, values, "le=\"" + number(s.bounds[i]) + "\"") + " " +
                       std::to_string(s.cumulative[i]) + exemplar(i) + "\n";
              }
              out += n + "_bucket" + label_text(labels, values, "le=\"+Inf\"") + " " +
                     std::to_string(s.count) + exemplar(s.bounds.size()) + "\n";
              out += n + "_sum" + label_text(labels, values) + " " + number(s.sum) + "\n";
              out +=
                  n + "_count" + label_text(labels, values) + " " + std::to_string(s.count) + "\n";
            });
          } else {
            f->each([&](const std::vector<std::string>& values, const auto& m) {
              out += n + label_text(labels, values) + " " + number(m.value()) + "\n";
            });
          }
        },
        e->family);
  }
  if (om) out += "# EOF\n";
  return out;
}

}  // namespace errand::observe
