// A minimal error type for the TensorFlow-free core: kernels turn it into
// errors::InvalidArgument, tests into a failure.
#ifndef KERAS_INT_CC_CORE_STATUS_H_
#define KERAS_INT_CC_CORE_STATUS_H_

#include <string>
#include <utility>

namespace keras_int {

class Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  bool ok() const { return message_.empty(); }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::string message_;
};

#define KERAS_INT_RETURN_IF_ERROR(expr)  \
  do {                                   \
    ::keras_int::Status _status = (expr); \
    if (!_status.ok()) return _status;   \
  } while (0)

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_STATUS_H_
