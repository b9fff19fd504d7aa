#include "observe/span_pipeline.hpp"

#include "detail/thread_name.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace errand::observe::detail {

namespace {

using MutexLock = errand::detail::MutexLock;

constexpr std::chrono::milliseconds kFirstBackoff{1000};
constexpr std::chrono::milliseconds kMaxBackoff{30000};
constexpr std::chrono::seconds kLogInterval{60};

}  // namespace

SpanPipeline::SpanPipeline(const TracingOptions& options, std::unique_ptr<SpanExporter> exporter)
    : max_queue_(options.max_queue),
      max_batch_(options.max_batch),
      batch_delay_(options.batch_delay),
      log_(options.logger),
      exporter_(std::move(exporter)) {
  std::string_view name = options.sampler;
  parent_based_ = name.starts_with("parentbased_");
  if (parent_based_) name.remove_prefix(std::string_view("parentbased_").size());
  if (name == "always_off") {
    root_ = Sampling::always_off;
  } else if (name == "traceidratio") {
    root_ = Sampling::ratio;
    // Compared with the trace id's low 56 bits (W3C's random part).
    ratio_bound_ =
        static_cast<std::uint64_t>(std::ldexp(std::clamp(options.sampler_ratio, 0.0, 1.0), 56));
  } else {
    root_ = Sampling::always_on;
  }
  if (options.metrics != nullptr) {
    auto& m = *options.metrics;
    exported_ = &m.counter("otel_spans_exported_total", "Spans the collector accepted").get();
    failures_ = &m.counter("otel_export_failures_total",
                           "Span export requests that failed after the exporter's retries")
                     .get();
    dropped_ = &m.counter("otel_spans_dropped_total",
                          "Spans not exported: queue_full (the export queue was full), "
                          "export_failed (the collector did not take them), shutdown (still "
                          "queued when the grace period ended)",
                          {"reason"});
  }
  thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
  errand::detail::name_thread(thread_, "errand-otlp");
}

SpanPipeline::~SpanPipeline() {
  shutdown(std::chrono::milliseconds(0));
}

bool SpanPipeline::sample(std::string_view trace_id, const bool* parent_sampled) const {
  if (parent_based_ && parent_sampled != nullptr) return *parent_sampled;
  switch (root_) {
    case Sampling::always_on: return true;
    case Sampling::always_off: return false;
    case Sampling::ratio: break;
  }
  std::uint64_t low = 0;
  if (trace_id.size() == 32) {
    const auto digits = trace_id.substr(18);  // 14 hex digits: 56 bits
    std::from_chars(digits.data(), digits.data() + digits.size(), low, 16);
  }
  return low < ratio_bound_;
}

void SpanPipeline::drop(std::string_view reason, std::size_t n) {
  // After shutdown() the registry may be gone with its App: late spans go uncounted.
  if (dropped_ != nullptr && n > 0 && !detached_.load()) {
    dropped_->with({reason}).inc(static_cast<double>(n));
  }
}

void SpanPipeline::submit(std::unique_ptr<SpanData> span) {
  std::string_view refused;
  bool wake = false;
  {
    const MutexLock lock(mu_);
    if (finished_ || (closed_ && std::chrono::steady_clock::now() >= flush_until_)) {
      refused = "shutdown";
    } else if (queue_.size() >= max_queue_) {
      refused = "queue_full";
    } else {
      queue_.push_back(std::move(span));
      wake = queue_.size() == max_batch_;
    }
  }
  if (!refused.empty()) {
    drop(refused, 1);
    return;
  }
  if (wake) cv_.notify_one();
}

bool SpanPipeline::export_batch(SpanBatch& batch) {
  const std::size_t n = batch.size();
  bool ok = false;
  try {
    ok = exporter_->export_spans(batch);
  } catch (const std::exception&) {
    ok = false;
  }
  const auto now = std::chrono::steady_clock::now();
  if (ok) {
    if (exported_ != nullptr) exported_->inc(static_cast<double>(n));
    if (failure_logged_) {
      log_.info("span export works again",
                {{"failed_requests", static_cast<std::uint64_t>(failed_since_log_)}});
      failure_logged_ = false;
    }
    backoff_ = std::chrono::milliseconds(0);
    return true;
  }
  if (failures_ != nullptr) failures_->inc();
  drop("export_failed", n);
  ++failed_since_log_;
  // One line a minute at most, however the collector flaps.
  if (last_log_ == std::chrono::steady_clock::time_point{} || now - last_log_ >= kLogInterval) {
    log_.warn(failure_logged_ ? "span export still failing"
                              : "span export failed; spans are dropped and counted "
                                "(otel_spans_dropped_total) until the collector answers",
              {{"error", exporter_->last_error()},
               {"failed_requests", static_cast<std::uint64_t>(failed_since_log_)}});
    last_log_ = now;
    failed_since_log_ = 0;
    failure_logged_ = true;
  }
  backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
  return false;
}

void SpanPipeline::run(const std::stop_token& stop) {
  while (true) {
    SpanBatch batch;
    {
      MutexLock lock(mu_);
      if (backoff_.count() > 0) {
        // The collector failed: the next request waits, whatever is queued.
        lock.wait_for(cv_, backoff_, [&]() ERRAND_REQUIRES(mu_) { return closed_; });
      }
      lock.wait_for(cv_, batch_delay_,
                    [&]() ERRAND_REQUIRES(mu_) { return queue_.size() >= max_batch_ || closed_; });
      const bool over =
          closed_ && (queue_.empty() || std::chrono::steady_clock::now() >= flush_until_ ||
                      stop.stop_requested());
      if (over) {
        drop("shutdown", queue_.size());
        queue_.clear();
        finished_ = true;
        cv_.notify_all();
        return;
      }
      const std::size_t n = std::min(queue_.size(), max_batch_);
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) export_batch(batch);
  }
}

void SpanPipeline::shutdown(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  {
    MutexLock lock(mu_);
    if (!closed_) {
      closed_ = true;
      flush_until_ = until;
    }
    cv_.notify_all();
    // An export under way past the deadline (a collector that does not
    // answer) is cut short by shutting the exporter down.
    lock.wait_for(cv_,
                  std::max(until - std::chrono::steady_clock::now(),
                           std::chrono::steady_clock::duration::zero()),
                  [&]() ERRAND_REQUIRES(mu_) { return finished_; });
  }
  std::call_once(shut_, [this] {
    thread_.request_stop();
    exporter_->shutdown();
    thread_.join();
    detached_.store(true);
  });
}

}  // namespace errand::observe::detail
