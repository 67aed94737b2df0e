// Compiled without LibTorch's include directories (tests/CMakeLists.txt): the public headers must
// not need them, so that an application links reasonseg without torch headers.
#include <reasonseg/reasonseg.h>
#include <reasonseg/reasonseg.hpp>

#ifdef TORCH_API
#error "a public header pulled in LibTorch"
#endif

namespace {
[[maybe_unused]] reasonseg::SegmentResult empty_result() { return {}; }
}  // namespace
