#pragma once
// Internal: where ended spans go when tracing is on. A bounded queue that
// Span::end() pushes to without blocking, and one thread that exports it in
// batches through a SpanExporter (OTLP/HTTP, see otlp_exporter.cpp).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "errand/detail/thread_annotations.hpp"
#include "errand/observe/logger.hpp"
#include "errand/observe/metrics.hpp"
#include "errand/observe/span.hpp"
#include "errand/observe/tracer.hpp"

namespace errand::observe::detail {

struct SpanEvent {
  std::string name;
  std::chrono::system_clock::time_point at;
  std::vector<Attribute> attributes;
};

struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::internal;
  TraceContext context;
  std::string parent_span_id;  // empty: a root span
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::vector<TraceContext> links;
  bool error = false;
  std::string status_message;
};

using SpanBatch = std::vector<std::unique_ptr<SpanData>>;

// Turns spans into requests to a collector.
class SpanExporter {
 public:
  SpanExporter() = default;
  virtual ~SpanExporter() = default;
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;
  // True when the collector took the batch; may block for the export
  // timeout and the exporter's own retries. Called from one thread.
  virtual bool export_spans(SpanBatch& spans) = 0;
  // What the last failure said (the exporter's own words), for the log.
  [[nodiscard]] virtual std::string last_error() const = 0;
  virtual void shutdown() = 0;
};

// OTLP/HTTP with the JSON encoding to options' endpoint.
[[nodiscard]] std::unique_ptr<SpanExporter> make_otlp_exporter(const TracingOptions& options);

class SpanPipeline {
 public:
  SpanPipeline(const TracingOptions& options, std::unique_ptr<SpanExporter> exporter);
  ~SpanPipeline();  // shutdown(0)
  SpanPipeline(const SpanPipeline&) = delete;
  SpanPipeline& operator=(const SpanPipeline&) = delete;

  // The sampler's decision for a span of `trace_id` whose parent's sampled
  // flag is `parent_sampled` (null: a root span).
  [[nodiscard]] bool sample(std::string_view trace_id, const bool* parent_sampled) const;

  // Queues an ended span; drops (and counts) it when the queue is full or
  // the pipeline is shut down. Never blocks on the export.
  void submit(std::unique_ptr<SpanData> span);
  // Exports what is queued within `timeout`, then stops the thread.
  void shutdown(std::chrono::milliseconds timeout);

 private:
  void run(const std::stop_token& stop);
  bool export_batch(SpanBatch& batch);
  void drop(std::string_view reason, std::size_t n);

  enum class Sampling : std::uint8_t { always_on, always_off, ratio };
  Sampling root_;
  bool parent_based_;
  std::uint64_t ratio_bound_ = 0;  // a trace is sampled when its low 64 bits are below this

  std::size_t max_queue_;
  std::size_t max_batch_;
  std::chrono::milliseconds batch_delay_;
  Logger log_;
  Counter* exported_ = nullptr;
  Counter* failures_ = nullptr;
  Family<Counter>* dropped_ = nullptr;

  std::unique_ptr<SpanExporter> exporter_;  // used by the export thread only

  errand::detail::Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<SpanData>> queue_ ERRAND_GUARDED_BY(mu_);
  bool closed_ ERRAND_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point flush_until_ ERRAND_GUARDED_BY(mu_){};
  bool finished_ ERRAND_GUARDED_BY(mu_) = false;  // the export thread is done

  // The export thread's own: failures since the last log line.
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point last_log_{};
  std::size_t failed_since_log_ = 0;
  bool failure_logged_ = false;  // a warning said so, and no success since

  std::once_flag shut_;
  std::atomic<bool> detached_{false};  // shut down: the metrics may be gone
  std::jthread thread_;                // last: it starts once everything above exists
};

}  // namespace errand::observe::detail
