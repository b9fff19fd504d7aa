#include <gtest/gtest.h>

#include <set>

#include "errand/observe/trace_context.hpp"

namespace errand::observe {
namespace {

TEST(TraceContext, ParsesAValidTraceparent) {
  auto t = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->span_id, "00f067aa0ba902b7");
  EXPECT_TRUE(t->sampled());
  EXPECT_EQ(t->to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST(TraceContext, RejectsWhatTheSpecSaysToIgnore) {
  for (const char* bad : {
           "",
           "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with extra
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
       }) {
    EXPECT_FALSE(TraceContext::parse(bad)) << bad;
  }
}

TEST(TraceContext, AcceptsFutureVersionsWithExtraFields) {
  auto t = TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->sampled());
  EXPECT_FALSE(TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00extra"));
}

TEST(TraceContext, GeneratedTracesAreValidAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    auto t = TraceContext::generate();
    auto round_trip = TraceContext::parse(t.to_traceparent());
    ASSERT_TRUE(round_trip);
    EXPECT_EQ(*round_trip, t);
    ids.insert(t.trace_id);
  }
  EXPECT_EQ(ids.size(), 100U);
}

TEST(TraceContext, ChildKeepsTheTraceAndChangesTheSpan) {
  auto t = TraceContext::generate();
  auto c = t.child();
  EXPECT_EQ(c.trace_id, t.trace_id);
  EXPECT_NE(c.span_id, t.span_id);
  EXPECT_EQ(c.flags, t.flags);
}

}  // namespace
}  // namespace errand::observe

namespace errand::observe {
namespace {

TEST(TraceContext, TracestateIsCleanedForPropagation) {
  const auto p = [](std::string_view h) { return TraceContext::parse_tracestate(h); };
  EXPECT_EQ(p("congo=t61rcWkgMzE"), "congo=t61rcWkgMzE");
  EXPECT_EQ(p(" congo=t61rcWkgMzE ,\trojo=00f067aa0ba902b7 "),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(p("a=1,,b=2"), "a=1,b=2");               // empty members are allowed and dropped
  EXPECT_EQ(p("tenant@sys=x y"), "tenant@sys=x y");  // multi-tenant key, inner space
  EXPECT_EQ(p(""), "");
  // Invalid: not propagated at all.
  for (const char* bad :
       {"Congo=1", "congo", "=1", "congo=", "congo=a,b", "a=1=2", "a=x\x01", "a@b@c=1", "_a=1"}) {
    EXPECT_EQ(p(bad), std::nullopt) << bad;
  }
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i > 0 ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  EXPECT_EQ(p(many), std::nullopt);  // more than 32 members
  // Past 512 characters, members are dropped from the end.
  const std::string long_value(200, 'v');
  const auto kept = p("a=" + long_value + ",b=" + long_value + ",c=" + long_value);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(*kept, "a=" + long_value + ",b=" + long_value);
}

TEST(TraceContext, AChildKeepsTheTracestate) {
  auto t = *TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  t.tracestate = "congo=t61rcWkgMzE";
  EXPECT_EQ(t.child().tracestate, "congo=t61rcWkgMzE");
}

}  // namespace
}  // namespace errand::observe
