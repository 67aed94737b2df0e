// Prompt helpers of the model families: LISA++'s task suffixes.
#pragma once
#include <string>

namespace reasonseg {

// LISA++ was trained with a task sentence appended to the question (its utils/utils.py); the
// suffix is plain text (no special token, no template change) and selects what the answer holds.
enum class LisaPlusTask {
  SemanticSeg,      // one mask for the whole category                    ("sem-seg")
  InstanceSeg,      // one mask per countable instance                    ("inst-seg")
  SemanticConvSeg,  // a textual answer and a semantic mask               ("sem-conv-seg")
  InstanceConvSeg,  // a textual answer and one mask per instance         ("inst-conv-seg")
  PureConv,         // text only, no mask                                 ("conv")
  ChainOfThought,   // a step-by-step explanation                         ("cot")
};

// The suffix exactly as LISA++ appends it (it starts with a space).
const char* lisa_plus_suffix(LisaPlusTask task);
// question + suffix: the instruction to pass to segment().
std::string lisa_plus_prompt(const std::string& question, LisaPlusTask task);
// "sem-seg", "inst-seg", "sem-conv-seg", "inst-conv-seg", "conv", "cot"; throws reasonseg::Error otherwise.
LisaPlusTask parse_lisa_plus_task(const std::string& name);

}  // namespace reasonseg
