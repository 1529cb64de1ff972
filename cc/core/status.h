// A minimal error type for the TensorFlow-free core: kernels turn it into
// a TensorFlow error of the same code (cc/kernels/common.h: ToTf), tests
// into a failure.
#ifndef KERAS_INT_CC_CORE_STATUS_H_
#define KERAS_INT_CC_CORE_STATUS_H_

#include <string>
#include <utility>

namespace keras_int {

class Status {
 public:
  // Whose fault an error is: the caller's inputs (kInvalidArgument, what
  // Error makes), the runtime under the library (kInternal: a CUDA call
  // failed), or the memory (kResourceExhausted: an allocation failed).
  enum class Code { kOk, kInvalidArgument, kInternal, kResourceExhausted };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }
  static Status Internal(std::string message) { return Status(Code::kInternal, std::move(message)); }
  static Status ResourceExhausted(std::string message) {
    return Status(Code::kResourceExhausted, std::move(message));
  }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

#define KERAS_INT_RETURN_IF_ERROR(expr)  \
  do {                                   \
    ::keras_int::Status _status = (expr); \
    if (!_status.ok()) return _status;   \
  } while (0)

}  // namespace keras_int

#endif  // KERAS_INT_CC_CORE_STATUS_H_
