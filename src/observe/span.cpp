#include "errand/observe/span.hpp"

#include "observe/span_pipeline.hpp"

namespace errand::observe {

namespace {

// At most kMaxValueBytes, not splitting a UTF-8 character.
std::string cut(std::string_view v) {
  if (v.size() <= Span::kMaxValueBytes) return std::string(v);
  std::size_t n = Span::kMaxValueBytes;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0U) == 0x80U) --n;
  return std::string(v.substr(0, n));
}

}  // namespace

Span::Span() noexcept = default;
Span::Span(TraceContext context) noexcept : context_(std::move(context)) {}
Span::~Span() {
  end();
}
Span::Span(Span&&) noexcept = default;
Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    context_ = std::move(other.context_);
    data_ = std::move(other.data_);
    pipeline_ = std::move(other.pipeline_);
  }
  return *this;
}

Span& Span::put(std::string_view key, AttributeValue value) {
  if (!data_) return *this;
  for (auto& a : data_->attributes) {
    if (a.key == key) {
      a.value = std::move(value);
      return *this;
    }
  }
  if (data_->attributes.size() < kMaxAttributes) {
    data_->attributes.push_back({std::string(key), std::move(value)});
  }
  return *this;
}

Span& Span::set(std::string_view key, std::string_view value) {
  if (!data_) return *this;
  return put(key, cut(value));
}
Span& Span::set(std::string_view key, bool value) {
  return put(key, value);
}
Span& Span::set(std::string_view key, double value) {
  return put(key, value);
}
Span& Span::set_int(std::string_view key, std::int64_t value) {
  return put(key, value);
}

Span& Span::rename(std::string_view name) {
  if (data_) data_->name = cut(name);
  return *this;
}

Span& Span::add_event(std::string_view name, std::vector<Attribute> attributes) {
  if (!data_ || data_->events.size() >= kMaxEvents) return *this;
  if (attributes.size() > kMaxAttributes) attributes.resize(kMaxAttributes);
  for (auto& a : attributes) {
    if (auto* s = std::get_if<std::string>(&a.value); s != nullptr && s->size() > kMaxValueBytes) {
      *s = cut(*s);
    }
  }
  data_->events.push_back({cut(name), std::chrono::system_clock::now(), std::move(attributes)});
  return *this;
}

Span& Span::record_exception(std::string_view type, std::string_view message) {
  if (!data_) return *this;
  return add_event("exception",
                   {{"exception.type", std::string(type)}, {"exception.message", cut(message)}});
}

Span& Span::add_link(const TraceContext& to) {
  if (data_ && data_->links.size() < kMaxLinks && !to.trace_id.empty()) {
    data_->links.push_back(to);
  }
  return *this;
}

Span& Span::set_error(std::string_view description) {
  if (data_) {
    data_->error = true;
    data_->status_message = cut(description);
  }
  return *this;
}

void Span::end() {
  if (!data_) return;
  data_->end = std::chrono::system_clock::now();
  pipeline_->submit(std::move(data_));
  pipeline_.reset();
}

void Span::discard() noexcept {
  data_.reset();
  pipeline_.reset();
}

}  // namespace errand::observe
