// The few CUDA-runtime features the engine uses beyond LibTorch's tensor ops: graph capture and
// a second stream. Built without CUDA (REASONSEG_HAVE_CUDA unset) the same interface stays: no
// graphs, and "side stream" work runs inline on the caller's thread.
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>
#include <vector>

namespace reasonseg {

// True when this build has the CUDA code paths (LibTorch with CUDA, REASONSEG_WITH_CUDA=ON).
bool cuda_support_compiled();

// A recorded sequence of device work, replayed with its inputs' and outputs' addresses fixed.
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  virtual void replay() = 0;
};

// Runs `body` once eagerly on a capture stream (lazy library initialisation must not happen while
// capturing), then records it into a CUDA graph. Every tensor `body` reads or writes must outlive
// the returned object; tensors it allocates come from the graph's private memory pool. Throws
// reasonseg::Error when graphs are unavailable (CPU device, no CUDA in this build).
std::unique_ptr<CapturedWork> capture_cuda_graph(torch::Device device, const std::function<void()>& body);

// Work queued on a second stream of `device`, after everything already queued on the current one.
// join() makes the current stream wait for it (the host does not wait). On CPU `body` runs at once.
class SideWork {
 public:
  virtual ~SideWork() = default;
  // `outputs`: tensors the work made that the current stream will now use (the caching allocator
  // must not hand their memory to the side stream while the current one still reads it).
  virtual void join(const std::vector<torch::Tensor>& outputs = {}) = 0;
  // Device time of the work (CUDA events), waiting for it to finish; host time on CPU.
  virtual double elapsed_ms() = 0;
};
// `inputs`: tensors made on the current stream that `body` reads (kept from reuse until it is done).
std::unique_ptr<SideWork> run_on_side_stream(torch::Device device, const std::vector<torch::Tensor>& inputs,
                                             const std::function<void()>& body);

// Waits for the work queued on the current stream of `device` (not the whole device: work on
// other streams keeps running). No-op on CPU.
void sync_current_stream(torch::Device device);

}  // namespace reasonseg
