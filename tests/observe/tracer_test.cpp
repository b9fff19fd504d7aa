// The tracer against a real OTLP/HTTP endpoint on 127.0.0.1 (errand's own
// server standing in for a collector): what a span carries, its limits,
// sampling, retries, drops and a bounded shutdown.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include <cmath>
#include <cstdlib>
#include <mutex>

#include "errand/observe/metrics.hpp"
#include "errand/observe/tracer.hpp"
#include "support/otlp_collector.hpp"
#include "support/wait.hpp"

namespace errand::observe {
namespace {

using namespace std::chrono_literals;
using test::attribute;
using test::Collector;

TracingOptions options_for(const Collector& c, Registry* metrics = nullptr) {
  TracingOptions o;
  o.endpoint = c.url();
  o.batch_delay = 10ms;
  o.metrics = metrics;
  o.service_instance = "node-1";
  return o;
}

double sample(Registry& r, std::string_view line_start) {
  const std::string text = "\n" + r.expose();
  auto at = text.find("\n" + std::string(line_start));
  if (at == std::string::npos) return 0;
  ++at;
  const auto end = text.find('\n', at);
  return std::stod(text.substr(text.rfind(' ', end) + 1, end - text.rfind(' ', end) - 1));
}

TEST(Tracer, OffHandsOutContextsAndSpansThatDoNotRecord) {
  const Tracer off;
  EXPECT_FALSE(off.enabled());
  const auto root = off.new_context(nullptr);
  EXPECT_TRUE(root.sampled());
  const auto child = off.new_context(&root);
  EXPECT_EQ(child.trace_id, root.trace_id);
  EXPECT_NE(child.span_id, root.span_id);
  auto span = off.start_child("work", SpanKind::internal, root);
  EXPECT_FALSE(span.recording());
  EXPECT_EQ(span.context().trace_id, root.trace_id);
  span.set("k", "v").set_error("ignored");  // no-ops
}

TEST(Tracer, ExportsASpanAsOtlpJsonWithItsResource) {
  Collector collector;
  Registry metrics;
  auto o = options_for(collector, &metrics);
  o.service_name = "billing";
  o.resource_attributes = "deployment.environment=test,team=pay%20ments";
  const Tracer tracer(o);
  auto parent = TraceContext::generate();
  parent.tracestate = "vendor=1";
  {
    auto span = tracer.start_child("charge card", SpanKind::client, parent);
    ASSERT_TRUE(span.recording());
    span.set("amount", 42).set("currency", "EUR").set("retry", false).set("ratio", 0.5);
    span.add_event("card declined", {{"reason", std::string("insufficient funds")}});
    span.add_link(TraceContext::generate());
    span.set_error("declined");
  }  // ended here
  ASSERT_TRUE(test::eventually([&] { return collector.spans().size() == 1; }));
  const auto s = collector.spans().front();
  EXPECT_EQ(collector.content_type(), "application/json");
  EXPECT_EQ(s.at("name").as_string(), "charge card");
  EXPECT_EQ(s.at("kind").as_int64(), 3);  // CLIENT
  EXPECT_EQ(s.at("traceId").as_string(), parent.trace_id);
  EXPECT_EQ(s.at("parentSpanId").as_string(), parent.span_id);
  EXPECT_EQ(s.at("traceState").as_string(), "vendor=1");
  EXPECT_EQ(attribute(s, "amount").at("intValue").as_string(), "42");
  EXPECT_EQ(attribute(s, "currency").at("stringValue").as_string(), "EUR");
  EXPECT_EQ(attribute(s, "retry").at("boolValue").as_bool(), false);
  EXPECT_EQ(attribute(s, "ratio").at("doubleValue").as_double(), 0.5);
  EXPECT_EQ(s.at("events").at(0).at("name").as_string(), "card declined");
  EXPECT_EQ(s.at("links").as_array().size(), 1U);
  EXPECT_EQ(s.at("status").at("code").as_int64(), 2);
  EXPECT_EQ(s.at("status").at("message").as_string(), "declined");
  EXPECT_LE(std::stoll(std::string(s.at("startTimeUnixNano").as_string())),
            std::stoll(std::string(s.at("endTimeUnixNano").as_string())));
  const auto resource = collector.resource();
  EXPECT_EQ(attribute(resource, "service.name").at("stringValue").as_string(), "billing");
  EXPECT_EQ(attribute(resource, "service.instance.id").at("stringValue").as_string(), "node-1");
  EXPECT_EQ(attribute(resource, "team").at("stringValue").as_string(), "pay ments");
  EXPECT_TRUE(test::eventually([&] { return sample(metrics, "otel_spans_exported_total ") == 1; }));
}

TEST(Tracer, KeepsASpanWithinItsLimits) {
  Collector collector;
  const Tracer tracer(options_for(collector));
  {
    auto span = tracer.start_child("big", SpanKind::internal, TraceContext::generate());
    for (int i = 0; i < 200; ++i) span.set("k" + std::to_string(i), i);
    span.set("k0", std::string(10'000, 'x'));  // replaces, cut to the limit
    for (int i = 0; i < 200; ++i) span.add_event("e");
  }
  ASSERT_TRUE(test::eventually([&] { return collector.spans().size() == 1; }));
  const auto s = collector.spans().front();
  EXPECT_EQ(s.at("attributes").as_array().size(), Span::kMaxAttributes);
  EXPECT_EQ(attribute(s, "k0").at("stringValue").as_string().size(), Span::kMaxValueBytes);
  EXPECT_EQ(s.at("events").as_array().size(), Span::kMaxEvents);
}

TEST(Tracer, MendsWhatJsonCannotCarry) {
  // The collector stand-in parses strictly (Boost.JSON refuses invalid
  // UTF-8): one bad byte must not cost the batch.
  Collector collector;
  const Tracer tracer(options_for(collector));
  {
    auto span = tracer.start_child("bytes \"quoted\"\t\x01\\", SpanKind::internal,
                                   TraceContext::generate());
    span.set("raw", std::string("ok\xff\xfe!"));
    span.set("nan", std::nan(""));
    span.set("cut", std::string(Span::kMaxValueBytes - 1, 'a') + "\xc3\xa9");  // é across the limit
    span.record_exception("std::runtime_error", "what() said \xc0\xaf");       // an overlong '/'
  }
  ASSERT_TRUE(test::eventually([&] { return collector.spans().size() == 1; }));
  const auto s = collector.spans().front();
  EXPECT_EQ(s.at("name").as_string(), "bytes \"quoted\"\t\x01\\");  // escaped, and back
  EXPECT_EQ(attribute(s, "raw").at("stringValue").as_string(), "ok\xef\xbf\xbd\xef\xbf\xbd!");
  EXPECT_EQ(attribute(s, "nan").at("doubleValue").as_string(), "NaN");
  EXPECT_EQ(attribute(s, "cut").at("stringValue").as_string(),
            std::string(Span::kMaxValueBytes - 1, 'a'));
}

TEST(Tracer, SamplesNewTracesByRatioAndChildrenByTheirParent) {
  Collector collector;
  auto o = options_for(collector);
  o.sampler = "parentbased_traceidratio";
  o.sampler_ratio = 0;
  const Tracer none(o);
  const auto root = none.new_context(nullptr);
  EXPECT_FALSE(root.sampled());
  EXPECT_FALSE(none.start("x", SpanKind::internal, root, "").recording());
  auto sampled_parent = TraceContext::generate();
  EXPECT_TRUE(none.new_context(&sampled_parent).sampled());
  auto unsampled_parent = sampled_parent;
  unsampled_parent.flags = 0;
  EXPECT_FALSE(none.new_context(&unsampled_parent).sampled());

  o.sampler = "always_on";  // not parent-based: the parent's flag does not count
  const Tracer all(o);
  EXPECT_TRUE(all.new_context(&unsampled_parent).sampled());

  o.sampler = "traceidratio";
  o.sampler_ratio = 0.5;
  const Tracer half(o);
  int sampled = 0;
  for (int i = 0; i < 2000; ++i) sampled += half.new_context(nullptr).sampled() ? 1 : 0;
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
}

TEST(Tracer, RetriesWhatTheCollectorRefusesForNowThenCountsTheFailure) {
  Registry metrics;
  {
    Collector busy_once(1);  // 503 once, then takes it
    const Tracer tracer(options_for(busy_once, &metrics));
    tracer.start_child("a", SpanKind::internal, TraceContext::generate()).end();
    ASSERT_TRUE(test::eventually([&] { return busy_once.spans().size() == 1; }));
    EXPECT_EQ(busy_once.requests(), 2);
    // The collector keeps the span before its answer reaches the exporter: a
    // tracer gone before then would cut that call short and count a failure.
    ASSERT_TRUE(
        test::eventually([&] { return sample(metrics, "otel_spans_exported_total ") == 1; }));
  }
  Collector down(1000);  // 503 every time
  const Tracer tracer(options_for(down, &metrics));
  tracer.start_child("b", SpanKind::internal, TraceContext::generate()).end();
  ASSERT_TRUE(test::eventually(
      [&] { return sample(metrics, R"(otel_spans_dropped_total{reason="export_failed"})") == 1; }));
  EXPECT_EQ(down.requests(), 3);  // three calls in all
  EXPECT_EQ(sample(metrics, "otel_export_failures_total "), 1);

  Collector refuses(1000, 400);  // not worth another call
  const Tracer strict(options_for(refuses, &metrics));
  strict.start_child("c", SpanKind::internal, TraceContext::generate()).end();
  ASSERT_TRUE(
      test::eventually([&] { return sample(metrics, "otel_export_failures_total ") == 2; }));
  EXPECT_EQ(refuses.requests(), 1);
}

TEST(Tracer, AFullQueueDropsAndCountsInsteadOfWaiting) {
  // A collector that takes the connection and never answers holds the
  // export thread, so the queue behind it fills.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  Registry metrics;
  TracingOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  o.batch_delay = 1ms;
  o.max_queue = 4;
  o.max_batch = 1;
  o.metrics = &metrics;
  const Tracer tracer(o);
  for (int i = 0; i < 50; ++i) {
    tracer.start_child("s", SpanKind::internal, TraceContext::generate()).end();
  }
  EXPECT_GE(sample(metrics, R"(otel_spans_dropped_total{reason="queue_full"})"), 40);
  // Shutdown cuts the hanging call short, well before its 10 s timeout
  // (no timing is asserted: it must simply return), and counts what it left.
  tracer.shutdown(50ms);
  EXPECT_GE(sample(metrics, R"(otel_spans_dropped_total{reason="shutdown"})"), 1);
}

TEST(TracingOptions, TheEnvironmentFillsWhatIsNotSet) {
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
  ::setenv("OTEL_SERVICE_NAME", "from-env", 1);
  ::setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
  ::setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
  auto o = TracingOptions{}.with_environment();
  EXPECT_EQ(o.endpoint, "http://collector:4318");
  EXPECT_EQ(o.service_name, "from-env");
  EXPECT_EQ(o.sampler, "parentbased_traceidratio");
  EXPECT_EQ(o.sampler_ratio, 0.25);
  EXPECT_EQ(o.max_queue, 100U);
  EXPECT_NO_THROW(o.validate());

  TracingOptions mine;
  mine.endpoint = "http://mine:4318";
  mine.service_name = "mine";
  EXPECT_EQ(mine.with_environment().endpoint, "http://mine:4318");  // a setting wins
  EXPECT_EQ(mine.with_environment().service_name, "mine");
  mine.sampler = "parentbased_traceidratio";  // --trace-sample-ratio 1
  mine.sampler_ratio = 1;
  EXPECT_EQ(mine.with_environment().sampler_ratio, 1);  // OTEL_TRACES_SAMPLER_ARG does not apply

  ::setenv("OTEL_TRACES_EXPORTER", "none", 1);
  EXPECT_FALSE(TracingOptions{}.with_environment().enabled());
  ::unsetenv("OTEL_TRACES_EXPORTER");
  ::setenv("OTEL_SDK_DISABLED", "true", 1);
  EXPECT_FALSE(TracingOptions{}.with_environment().enabled());
  ::unsetenv("OTEL_SDK_DISABLED");

  ::setenv("OTEL_TRACES_SAMPLER_ARG", "2", 1);
  EXPECT_THROW((void)TracingOptions{}.with_environment(), std::invalid_argument);
  ::setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
  ::setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
  EXPECT_THROW((void)TracingOptions{}.with_environment(), std::invalid_argument);
  ::unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
  ::setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots", 1);
  EXPECT_THROW((void)TracingOptions{}.with_environment(), std::invalid_argument);
  for (const char* name :
       {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_MAX_QUEUE_SIZE"}) {
    ::unsetenv(name);
  }
}

TEST(TracingOptions, ValidateNamesWhatIsWrong) {
  TracingOptions o;
  o.endpoint = "collector:4318";
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.endpoint = "http://collector:4318";
  o.sampler = "sometimes";
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.sampler = "traceidratio";
  o.sampler_ratio = 1.5;
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.sampler_ratio = 0.5;
  o.max_batch = o.max_queue + 1;
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.max_batch = 10;
  EXPECT_NO_THROW(o.validate());
  o.endpoint = "ftp://x";
  EXPECT_THROW(Tracer tracer(o), std::invalid_argument);
}

}  // namespace
}  // namespace errand::observe
