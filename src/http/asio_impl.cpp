// Separate compilation of Asio and Beast: their implementation is compiled once
// here instead of in every translation unit (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set on the errand target).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
