#include "nn/cuda_support.hpp"

#include <chrono>

#include "util/error.hpp"

#ifdef REASONSEG_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace reasonseg {

namespace {

// CPU (or no CUDA in this build): the work runs at once, timed by the host clock.
class InlineWork : public SideWork {
 public:
  explicit InlineWork(const std::function<void()>& body) {
    auto t0 = std::chrono::steady_clock::now();
    body();
    ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  void join(const std::vector<torch::Tensor>&) override {}
  double elapsed_ms() override { return ms_; }

 private:
  double ms_ = 0;
};

#ifdef REASONSEG_HAVE_CUDA
// `waiter` runs what is queued on it next only after everything queued so far on `producer`.
void wait_for(const c10::cuda::CUDAStream& producer, const c10::cuda::CUDAStream& waiter) {
  at::cuda::CUDAEvent queued;
  queued.record(producer);
  queued.block(waiter);
}

class GraphWork : public CapturedWork {
 public:
  void replay() override { graph.replay(); }
  at::cuda::CUDAGraph graph;
};

class StreamWork : public SideWork {
 public:
  StreamWork(torch::Device device, const std::vector<torch::Tensor>& inputs, const std::function<void()>& body)
      : start_(cudaEventDefault), done_(cudaEventDefault) {
    auto caller = c10::cuda::getCurrentCUDAStream(device.index());
    auto side = c10::cuda::getStreamFromPool(false, device.index());
    for (auto t : inputs) t.record_stream(side.unwrap());
    wait_for(caller, side);  // the side stream starts after the caller's queued work (its inputs)
    c10::cuda::CUDAStreamGuard guard(side);
    start_.record(side);
    body();
    done_.record(side);
  }
  void join(const std::vector<torch::Tensor>& outputs) override {
    auto caller = c10::cuda::getCurrentCUDAStream();
    if (!joined_) done_.block(caller);
    for (auto t : outputs) t.record_stream(caller.unwrap());
    joined_ = true;
  }
  double elapsed_ms() override {
    done_.synchronize();
    return start_.elapsed_time(done_);
  }

 private:
  at::cuda::CUDAEvent start_, done_;
  bool joined_ = false;
};
#endif

}  // namespace

bool cuda_support_compiled() {
#ifdef REASONSEG_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<CapturedWork> capture_cuda_graph(torch::Device device, const std::function<void()>& body) {
#ifdef REASONSEG_HAVE_CUDA
  if (device.is_cuda()) {
    auto work = std::make_unique<GraphWork>();
    auto caller = c10::cuda::getCurrentCUDAStream(device.index());
    auto stream = c10::cuda::getStreamFromPool(false, device.index());
    wait_for(caller, stream);
    {
      c10::cuda::CUDAStreamGuard guard(stream);
      body();  // warm-up: cuBLAS handles and workspaces for this stream are made here
      work->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);  // other threads may run eager work
      body();
      work->graph.capture_end();
    }
    wait_for(stream, caller);
    return work;
  }
#endif
  fail("CUDA graphs: not available on ", device.str(), cuda_support_compiled() ? "" : " (this build has no CUDA)");
}

std::unique_ptr<SideWork> run_on_side_stream(torch::Device device, const std::vector<torch::Tensor>& inputs,
                                             const std::function<void()>& body) {
#ifdef REASONSEG_HAVE_CUDA
  if (device.is_cuda()) return std::make_unique<StreamWork>(device, inputs, body);
#endif
  (void)inputs;
  return std::make_unique<InlineWork>(body);
}

void sync_current_stream(torch::Device device) {
#ifdef REASONSEG_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#else
  (void)device;
#endif
}

}  // namespace reasonseg
