#pragma once
// from_json<T>(value): builds a T from JSON, where T is a struct described with
// BOOST_DESCRIBE_STRUCT (members may be strings, bool, integers, floating point,
// std::optional<U> for optional fields, std::vector<U>, std::map<std::string, U>,
// boost::json::value, or other described structs). to_json(t) is the inverse.
//
// Unknown fields: by default ignored, like Go's encoding/json, so a client may
// send more than a handler reads. from_json<T>(v, Unknown::reject) refuses
// them instead, in T and every described struct inside it ("field 'priorty'
// is not known"); the task API and typed task payloads bind this way, so a
// typo is an error rather than a silently lost option. A struct decides for
// itself by declaring
//   static constexpr errand::json::Unknown unknown_fields = Unknown::ignore;
// (a free-form payload) or `= Unknown::reject` (always strict).
// Members of type boost::json::value are free-form JSON either way.
//
// On bad input from_json throws json::BindError naming the first offending
// field by its path ("field 'a.b[2]' must be a string, got integer"). The HTTP
// layer turns it into 400 invalid_field; the task layer into a rejected enqueue.
// Pure functions: safe on any thread.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/describe/members.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/mp11/algorithm.hpp>

namespace errand::json {

enum class Unknown { ignore, reject };

class BindError : public std::invalid_argument {
 public:
  BindError(std::string path, const std::string& message)
      : std::invalid_argument(message), path_(std::move(path)) {}
  // "a.b[2]"; "(body)" when the top-level value itself is wrong.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace errand::json

namespace errand::json::detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_string_map : std::false_type {};
template <class V, class C, class A>
struct is_string_map<std::map<std::string, V, C, A>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

[[noreturn]] void throw_field_error(const std::string& path, std::string_view what);
[[nodiscard]] std::string_view json_kind(const boost::json::value& v);
// "a.b" for member b of a (the key quoted to a bounded length: it came from a client).
[[nodiscard]] std::string member_path(const std::string& path, std::string_view key);
// Throws naming every key of `obj` that is not in `known`.
[[noreturn]] void throw_unknown_fields(const std::string& path, const boost::json::object& obj,
                                       const std::string_view* known, std::size_t n_known);

template <class T>
T bind_value(const boost::json::value& v, const std::string& path, Unknown unknown);

template <class T>
T bind_integer(const boost::json::value& v, const std::string& path) {
  if (v.is_int64()) {
    const auto i = v.get_int64();
    if constexpr (std::is_unsigned_v<T>) {
      if (i >= 0 && static_cast<std::uint64_t>(i) <= std::numeric_limits<T>::max()) {
        return static_cast<T>(i);
      }
    } else {
      if (i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max()) {
        return static_cast<T>(i);
      }
    }
    throw_field_error(path, "is out of range");
  }
  if (v.is_uint64()) {
    const auto u = v.get_uint64();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
    throw_field_error(path, "is out of range");
  }
  throw_field_error(path, std::string("must be an integer, got ") + std::string(json_kind(v)));
}

template <class T>
T bind_struct(const boost::json::value& v, const std::string& path, Unknown unknown) {
  if (!v.is_object()) {
    throw_field_error(path.empty() ? std::string("(body)") : path,
                      std::string("must be an object, got ") + std::string(json_kind(v)));
  }
  const auto& obj = v.get_object();
  T out{};
  if constexpr (requires { T::unknown_fields; }) unknown = T::unknown_fields;
  // Inherited members too, as Boost.JSON's value_from (our to_json) writes them.
  using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                           boost::describe::mod_inherited>;
  if (unknown == Unknown::reject) {
    std::array<std::string_view, boost::mp11::mp_size<Members>::value> known{};
    std::size_t i = 0;
    boost::mp11::mp_for_each<Members>([&](auto member) { known[i++] = member.name; });
    for (const auto& kv : obj) {
      if (std::find(known.begin(), known.end(), kv.key()) == known.end()) {
        throw_unknown_fields(path, obj, known.data(), known.size());
      }
    }
  }
  boost::mp11::mp_for_each<Members>([&](auto member) {
    using M = std::remove_cvref_t<decltype(out.*member.pointer)>;
    std::string field_path = path.empty() ? member.name : path + "." + member.name;
    const auto* it = obj.if_contains(member.name);
    if (it == nullptr || (it->is_null() && is_optional<M>::value)) {
      if constexpr (is_optional<M>::value) {
        return;
      } else {
        throw_field_error(field_path, "is required");
      }
    }
    out.*member.pointer = bind_value<M>(*it, field_path, unknown);
  });
  return out;
}

template <class T>
T bind_value(const boost::json::value& v, const std::string& path, Unknown unknown) {
  if constexpr (std::is_same_v<T, boost::json::value>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_bool()) {
      throw_field_error(path, std::string("must be a boolean, got ") + std::string(json_kind(v)));
    }
    return v.get_bool();
  } else if constexpr (std::is_integral_v<T>) {
    return bind_integer<T>(v, path);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) {
      throw_field_error(path, std::string("must be a number, got ") + std::string(json_kind(v)));
    }
    return static_cast<T>(v.to_number<double>());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) {
      throw_field_error(path, std::string("must be a string, got ") + std::string(json_kind(v)));
    }
    return std::string(v.get_string());
  } else if constexpr (is_optional<T>::value) {
    if (v.is_null()) return T{};
    return T{bind_value<typename T::value_type>(v, path, unknown)};
  } else if constexpr (is_string_map<T>::value) {
    if (!v.is_object()) {
      throw_field_error(path, std::string("must be an object, got ") + std::string(json_kind(v)));
    }
    T out;
    for (const auto& [key, item] : v.get_object()) {
      out.emplace(std::string(key),
                  bind_value<typename T::mapped_type>(item, member_path(path, key), unknown));
    }
    return out;
  } else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) {
      throw_field_error(path, std::string("must be an array, got ") + std::string(json_kind(v)));
    }
    T out;
    out.reserve(v.get_array().size());
    std::size_t i = 0;
    for (const auto& item : v.get_array()) {
      out.push_back(bind_value<typename T::value_type>(item, path + "[" + std::to_string(i++) + "]",
                                                       unknown));
    }
    return out;
  } else {
    static_assert(boost::describe::has_describe_members<T>::value,
                  "from_json<T>: T must be described with BOOST_DESCRIBE_STRUCT");
    return bind_struct<T>(v, path, unknown);
  }
}

}  // namespace errand::json::detail

namespace errand::json {

template <class T>
[[nodiscard]] T from_json(const boost::json::value& v, Unknown unknown = Unknown::ignore) {
  return detail::bind_value<T>(v, "", unknown);
}

// Boost.JSON already converts described structs, optionals and vectors.
template <class T>
[[nodiscard]] boost::json::value to_json(const T& t) {
  return boost::json::value_from(t);
}

}  // namespace errand::json
