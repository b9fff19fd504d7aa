// traceparent and tracestate headers as a client may send them: parse()
// either refuses or gives a context that prints back to what it read, and
// parse_tracestate() gives a header that is its own fixed point and within
// the spec's bounds.
#include <algorithm>

#include "errand/observe/trace_context.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
using errand::observe::TraceContext;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = errand::fuzz::text(data, size);
  if (auto ctx = TraceContext::parse(in)) {
    check(ctx->trace_id.size() == 32 && ctx->span_id.size() == 16, "id lengths");
    const auto printed = ctx->to_traceparent();
    const auto again = TraceContext::parse(printed);
    check(again && *again == *ctx, "traceparent round trip");
    check(ctx->child().trace_id == ctx->trace_id, "a child keeps the trace");
  }
  if (auto state = TraceContext::parse_tracestate(in)) {
    check(state->size() <= 512, "tracestate within 512 characters");
    check(std::count(state->begin(), state->end(), ',') < 32, "at most 32 members");
    check(TraceContext::parse_tracestate(*state) == state, "tracestate is a fixed point");
  }
  return 0;
}
