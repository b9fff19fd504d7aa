#include "errand/observe/task_stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include <boost/json.hpp>

namespace errand::observe {

namespace {

using std::chrono::seconds;

constexpr std::string_view kOther = "(other)";

std::int64_t epoch_second(TaskStats::TimePoint t) {
  return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

std::size_t bucket(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms <= 0) return 0;
  const auto b = static_cast<std::size_t>(std::bit_width(static_cast<std::uint64_t>(ms)));
  return std::min(b, TaskStats::kBuckets - 1);
}

// The bucket holding the p-quantile, as its upper bound in ms; null when empty.
boost::json::value quantile(const TaskStats::Histogram& h, double p) {
  std::uint64_t total = 0;
  for (const auto n : h) total += n;
  if (total == 0) return nullptr;
  const auto want =
      static_cast<std::uint64_t>(std::max(1.0, std::ceil(p * static_cast<double>(total))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    seen += h[i];
    if (seen >= want) return std::int64_t{1} << i;
  }
  return std::int64_t{1} << (h.size() - 1);
}

boost::json::array sparse(const TaskStats::Histogram& h) {
  boost::json::array out;
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (h[i] == 0) continue;
    out.push_back(i);
    out.push_back(h[i]);
  }
  return out;
}

void add_sparse(const boost::json::array& pairs, TaskStats::Histogram& into) {
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
    const auto b = pairs[i].to_number<std::size_t>();
    if (b < into.size()) into[b] += pairs[i + 1].to_number<std::uint32_t>();
  }
}

}  // namespace

TaskStats::Second& TaskStats::Second::operator+=(const Second& other) {
  succeeded += other.succeeded;
  failed += other.failed;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    wait[i] += other.wait[i];
    run[i] += other.run[i];
  }
  return *this;
}

TaskStats::TaskStats(seconds window, std::size_t max_queues)
    : span_(std::max(window, seconds(1))), max_queues_(std::max<std::size_t>(max_queues, 1)) {}

void TaskStats::record(std::string_view queue, TimePoint at, bool succeeded,
                       std::chrono::milliseconds waited, std::chrono::nanoseconds ran) {
  const auto second = epoch_second(at);
  const auto n = static_cast<std::size_t>(span_.count());
  const errand::detail::MutexLock lock(mu_);
  auto it = rings_.find(queue);
  if (it == rings_.end()) {
    if (rings_.size() + 1 >= max_queues_) queue = kOther;  // keep a place for "(other)"
    it = rings_.find(queue);
    if (it == rings_.end()) {
      it = rings_
               .emplace(std::string(queue),
                        Ring{std::vector<std::int64_t>(n, -1), std::vector<Second>(n)})
               .first;
    }
  }
  auto& ring = it->second;
  const auto slot = static_cast<std::size_t>(second % static_cast<std::int64_t>(n));
  if (ring.epoch[slot] != second) {  // a slot from a window ago: start it afresh
    ring.epoch[slot] = second;
    ring.slots[slot] = {};
  }
  auto& s = ring.slots[slot];
  ++(succeeded ? s.succeeded : s.failed);
  ++s.wait[bucket(waited)];
  ++s.run[bucket(ran)];
}

TaskStats::Window TaskStats::window(TimePoint now, seconds length) const {
  const auto n = static_cast<std::int64_t>(span_.count());
  const auto len = std::clamp<std::int64_t>(length.count(), 1, n);
  const auto last = epoch_second(now);
  Window out;
  const errand::detail::MutexLock lock(mu_);
  for (const auto& [name, ring] : rings_) {
    auto& seconds_out = out[name];
    seconds_out.resize(static_cast<std::size_t>(len));
    for (std::int64_t k = 0; k < len; ++k) {
      const auto second = last - len + 1 + k;
      const auto slot = static_cast<std::size_t>(((second % n) + n) % n);
      if (ring.epoch[slot] == second) seconds_out[static_cast<std::size_t>(k)] = ring.slots[slot];
    }
  }
  return out;
}

std::string TaskStats::encode(TimePoint now, seconds length) const {
  const auto w = window(now, length);
  boost::json::object queues;
  for (const auto& [name, secs] : w) {
    boost::json::array rows;
    for (std::size_t k = 0; k < secs.size(); ++k) {
      const auto& s = secs[k];
      if (s.succeeded == 0 && s.failed == 0) continue;
      // Age in seconds (0: `now`'s second), then the second's figures.
      rows.push_back(boost::json::array{secs.size() - 1 - k, s.succeeded, s.failed, sparse(s.wait),
                                        sparse(s.run)});
    }
    if (!rows.empty()) queues[name] = std::move(rows);
  }
  return boost::json::serialize(
      boost::json::object{{"v", 1}, {"end", epoch_second(now)}, {"queues", std::move(queues)}});
}

void TaskStats::merge(std::string_view encoded, TimePoint now, seconds length, Window& into) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(encoded, ec);
  if (ec || !v.is_object()) return;
  try {
    const auto& o = v.as_object();
    if (o.at("v").to_number<int>() != 1) return;
    // Their "now" may be a little behind ours: shift their ages onto our window.
    const auto lag = epoch_second(now) - o.at("end").to_number<std::int64_t>();
    for (const auto& [name, rows] : o.at("queues").as_object()) {
      auto& secs = into[name];
      if (secs.empty())
        secs.resize(static_cast<std::size_t>(std::max<std::int64_t>(length.count(), 1)));
      for (const auto& row : rows.as_array()) {
        const auto& r = row.as_array();
        const auto age = r.at(0).to_number<std::int64_t>() + lag;
        if (age < 0 || age >= static_cast<std::int64_t>(secs.size())) continue;
        auto& s = secs[secs.size() - 1 - static_cast<std::size_t>(age)];
        s.succeeded += r.at(1).to_number<std::uint32_t>();
        s.failed += r.at(2).to_number<std::uint32_t>();
        add_sparse(r.at(3).as_array(), s.wait);
        add_sparse(r.at(4).as_array(), s.run);
      }
    }
  } catch (const std::exception&) {  // another version's shape: its figures are left out
  }
}

boost::json::object TaskStats::to_json(const Window& window, TimePoint now, seconds length) {
  boost::json::array queues;
  for (const auto& [name, secs] : window) {
    boost::json::array succeeded;
    boost::json::array failed;
    boost::json::array wait50;
    boost::json::array wait95;
    boost::json::array run50;
    boost::json::array run95;
    for (const auto& s : secs) {
      succeeded.push_back(s.succeeded);
      failed.push_back(s.failed);
      wait50.push_back(quantile(s.wait, 0.5));
      wait95.push_back(quantile(s.wait, 0.95));
      run50.push_back(quantile(s.run, 0.5));
      run95.push_back(quantile(s.run, 0.95));
    }
    queues.push_back({{"name", name},
                      {"succeeded", std::move(succeeded)},
                      {"failed", std::move(failed)},
                      {"wait_p50_ms", std::move(wait50)},
                      {"wait_p95_ms", std::move(wait95)},
                      {"run_p50_ms", std::move(run50)},
                      {"run_p95_ms", std::move(run95)}});
  }
  const auto end = epoch_second(now);
  return {{"start", end - length.count() + 1},
          {"end", end},
          {"window_s", length.count()},
          {"queues", std::move(queues)}};
}

}  // namespace errand::observe
