// Reader for PyTorch `torch.save` zip checkpoints (the released LISA `.bin` shards).
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace reasonseg {

// Reads the state dict of a torch.save zip file without Python and without copying: the zip
// directory is parsed here (stored entries, zip64 aware), the pickle is decoded by a small
// pickle machine that understands exactly what torch.save writes for a state dict, and every
// tensor is a view of a memory map of the file.
//
// Why not LibTorch's torch::jit::Unpickler: in LibTorch 1.13 it turns `collections.OrderedDict`
// (the type of every state dict saved from Python) into None, so HF checkpoints cannot be read.
std::vector<std::pair<std::string, torch::Tensor>> read_torch_bin(const std::string& path);

// Writes a state dict in the torch.save zip format (pickle protocol 2), readable by torch.load.
void write_torch_bin(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace reasonseg
